/** The soak's two channels: the survivor serves on SERVER_PORT, the peer on CLIENT_PORT (Qubes-style paths). */
export const SERVER_PORT = 1;
export const CLIENT_PORT = 2;
