// Package flood sheds excess SIP requests per source address before they
// cost callctl anything, the way Kamailio's pike module does: each source
// has a token bucket (a rate and a burst), a request over it is dropped, and
// a source that keeps exceeding its rate for a while is blocked outright for
// a longer while. The table of sources is bounded, so a flood from many
// (forged) addresses cannot grow it without limit: sources beyond the bound
// share one bucket. The limits can change while it runs (Limiter.SetConfig,
// a configuration reload) without forgetting any source.
package flood
