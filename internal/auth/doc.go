// Package auth decides who an API client is and what it may do. It turns a
// bearer token into a [Client] (Authenticator.Authenticate), and a Client
// answers the two questions every request asks: may it do this
// (Client.Can with a [Privilege]) and may it see this session at all
// (Client.InScope with the session's caller and callee numbers).
//
// Clients and roles come from the configuration (config.Client,
// config.Role); [New] checks them and reports every problem at once, each a
// *config.FieldError naming its key ("clients[2].privileges[0]") and the
// allowed values. Tokens are never stored: the configuration holds
// "sha256:<hex>" of each token ([HashToken], [NewToken]), a presented token is
// hashed and compared with every client's hash in constant time, and the
// package neither logs nor keeps it. Failed authentications are counted per
// source address and a source with too many is locked out for a while
// ([RateLimit]); successes are not counted. With no clients configured,
// callctl adds a bootstrap admin ([NewAdmin], Authenticator.AddClient).
// A configuration reload swaps the configured clients whole
// (Authenticator.Replace with a table [Compile] checked first): every
// request matches against one table, old or new.
//
// auth is asked by internal/api and never asks back: it knows nothing of
// sessions, SIP or HTTP handlers. Its only brush with HTTP is
// [TokenFromRequest], which finds the token in a request (the Authorization
// header, or for a browser's WebSocket the Sec-WebSocket-Protocol value
// "bearer.<token>" or the access_token query parameter).
package auth
