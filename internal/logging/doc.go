// Package logging builds callctl's zap logger and fixes the field names its
// lines share. Every line about a call carries the session id as "session"
// (Session) and the Call-ID of the leg it concerns as "call_id" (CallID), so
// one grep follows a call across both legs and the API. Fields are added
// once with logger.With where a session or leg starts, not on each line.
// Secrets never reach a log: not bearer tokens, not passwords, not the
// Authorization or Proxy-Authorization headers of SIP messages; log a
// client's name or a token's id instead. The relay's packet path logs
// nothing (see STYLE.md).
package logging
