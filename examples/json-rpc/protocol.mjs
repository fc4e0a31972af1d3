// The service both sides agree on: method names and the application's own
// error code. Plain strings work too; typed descriptors catch a misspelt
// method name at one place.
import { NotificationType, RequestType } from 'vscode-jsonrpc/node.js';

/** Notification (no reply): the client leaves a note for the server. */
export const note = new NotificationType('note');

/** Requests (one reply each). */
export const add = new RequestType('add'); // { a, b } -> a + b
export const divide = new RequestType('divide'); // { a, b } -> a / b, or DIVISION_BY_ZERO
export const notes = new RequestType('notes'); // -> every note received so far

/** JSON-RPC leaves -32000..-32099 to servers; this one is ours. */
export const DIVISION_BY_ZERO = -32001;
