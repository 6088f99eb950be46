package session

import (
	"strings"

	gosip "github.com/emiago/sipgo/sip"
)

// secureTarget applies RFC 3261 26.2.2 to the B leg of a call whose
// Request-URI was sips:: the callee is reached over TLS on a sips: URI
// too (callctl ends one dialog and starts another, but a caller who asked
// for sips asked for TLS up to the callee). It reports false when the
// route or trunk the number goes to does not use TLS: such a call is
// refused rather than carried in the clear.
func secureTarget(target gosip.Uri, transport string) (gosip.Uri, bool) {
	if !strings.EqualFold(transport, "tls") {
		return target, false
	}
	target.Scheme = "sips"
	// RFC 5630 4.1: transport=tls is deprecated in sips: URIs.
	if target.UriParams != nil {
		target.UriParams = target.UriParams.Clone()
		target.UriParams.Remove("transport")
	}
	return target, true
}
