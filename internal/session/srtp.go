package session

import (
	"fmt"
	"strings"

	"github.com/callctl/callctl/internal/media"
	"github.com/callctl/callctl/internal/sip"
	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// SRTP with SDES keys (RFC 4568) is decided per leg and terminated by
// callctl: each endpoint speaks RTP or SRTP to its own party (media/srtp.go),
// so either leg may be secure whatever the other one is, and listen-in, DTMF
// and music see plain RTP inside callctl.
//
// The caller's leg is SRTP when its offer is: RTP/SAVP with an a=crypto line
// callctl can use, or RTP/AVP with one ("best effort"), subject to
// Config.SRTPInbound. callctl answers with its own fresh key under the tag
// the caller's accepted line has (RFC 4568 §7.1.2). The callee's leg is
// offered what the route (or trunk) says (SRTPOffer): nothing, best effort
// (RTP/AVP with a=crypto) or RTP/SAVP, one line per configured suite, each
// with its own key; the answer's tag picks the line (§7.1.3).

// SRTPOffer says what callctl offers a B leg.
type SRTPOffer uint8

const (
	// SRTPOff offers plain RTP/AVP.
	SRTPOff SRTPOffer = iota
	// SRTPBestEffort offers RTP/AVP with a=crypto: SRTP if the callee
	// answers with a=crypto, plain RTP if it does not.
	SRTPBestEffort
	// SRTPMandatory offers RTP/SAVP; an answer without an acceptable
	// a=crypto ends the call.
	SRTPMandatory
)

// SRTPOffer names, as in the trunk.srtp and routes[].srtp settings.
const (
	SRTPOffName        = "off"
	SRTPBestEffortName = "best-effort"
	SRTPMandatoryName  = "mandatory"
)

// ParseSRTPOffer reads a trunk.srtp or routes[].srtp setting ("" is off).
func ParseSRTPOffer(s string) (SRTPOffer, error) {
	switch s {
	case SRTPOffName, "":
		return SRTPOff, nil
	case SRTPBestEffortName:
		return SRTPBestEffort, nil
	case SRTPMandatoryName:
		return SRTPMandatory, nil
	}
	return 0, fmt.Errorf("%q is not an SRTP mode (allowed: %s, %s, %s)", s, SRTPOffName, SRTPBestEffortName, SRTPMandatoryName)
}

// SRTPInbound says which callers callctl takes, by the security of their
// offer.
type SRTPInbound uint8

const (
	// InboundAccept takes SRTP and plain-RTP callers alike.
	InboundAccept SRTPInbound = iota
	// InboundRequire refuses (488) a caller that offers no usable a=crypto.
	InboundRequire
	// InboundRefuse refuses an RTP/SAVP offer (488) and ignores a=crypto
	// in an RTP/AVP one: every caller leg is plain RTP.
	InboundRefuse
)

// SRTPInbound names, as in the media.srtp_inbound setting.
const (
	InboundAcceptName  = "accept"
	InboundRequireName = "require"
	InboundRefuseName  = "refuse"
)

// ParseSRTPInbound reads the media.srtp_inbound setting ("" is accept).
func ParseSRTPInbound(s string) (SRTPInbound, error) {
	switch s {
	case InboundAcceptName, "":
		return InboundAccept, nil
	case InboundRequireName:
		return InboundRequire, nil
	case InboundRefuseName:
		return InboundRefuse, nil
	}
	return 0, fmt.Errorf("%q is not an inbound SRTP policy (allowed: %s, %s, %s)", s, InboundAcceptName, InboundRequireName, InboundRefuseName)
}

// legSRTP is the SRTP state of the session's two legs, owned by run.
type legSRTP struct {
	// offeredB are the lines offered to the callee, until its answer
	// picks one; modeB is what was offered.
	offeredB []media.Crypto
	modeB    SRTPOffer
	// localA, localB are callctl's lines in use on each leg; zero Suite
	// on a plain leg.
	localA, localB media.Crypto
}

func (e *Engine) srtpSuites() []media.SRTPSuite {
	if len(e.cfg.SRTPSuites) == 0 {
		return []media.SRTPSuite{media.SuiteAES128SHA1_80, media.SuiteAES128SHA1_32, media.SuiteAEADAES128GCM}
	}
	return e.cfg.SRTPSuites
}

// srtpOfferFor is what the route of a dialled number (else the trunk) says
// to offer the B leg; the same match as target.
func (e *Engine) srtpOfferFor(number string) SRTPOffer {
	return e.srtpOfferBy(e.routing.Load(), number)
}

// srtpOfferBy is srtpOfferFor by the routes of rt (see targetBy).
func (e *Engine) srtpOfferBy(rt *routing, number string) SRTPOffer {
	if rt == nil { // a session made without newSession (re-adopted)
		rt = e.routing.Load()
	}
	for _, r := range rt.routes {
		if r.Match.MatchString(number) {
			if r.SRTP != nil {
				return *r.SRTP
			}
			break
		}
	}
	return e.cfg.TrunkSRTP
}

// setupSRTP decides both legs' SRTP at the start of a call: the caller's
// from its offer and the inbound policy, and what to offer the callee. It
// refuses the call (488) and reports false when the policy says so.
func (s *Session) setupSRTP() bool {
	e := s.e
	offer := s.offer
	chosen, usable := media.SelectCrypto(offer.Crypto, e.srtpSuites())
	switch {
	case offer.SRTP() && e.cfg.SRTPInbound == InboundRefuse:
		return s.refuse(488, "Not Acceptable Here", "SRTP offered and media.srtp_inbound is refuse")
	case offer.SRTP() && !usable:
		return s.refuse(488, "Not Acceptable Here", "RTP/SAVP offer without a usable a=crypto line (callctl supports "+suiteList(e.srtpSuites())+")")
	case !usable && e.cfg.SRTPInbound == InboundRequire:
		return s.refuse(488, "Not Acceptable Here", "plain RTP offered and media.srtp_inbound is require")
	}
	if usable && e.cfg.SRTPInbound != InboundRefuse {
		local, err := media.NewCrypto(chosen.Tag, chosen.Suite)
		if err == nil {
			err = s.ea.SetSRTP(chosen, local)
		}
		if err != nil {
			return s.refuse(500, "Server Internal Error", "SRTP: "+err.Error())
		}
		s.srtp.localA = local
		s.wa.SetSRTP([]media.Crypto{local}, offer.SRTP())
		s.log.Debug("caller leg is SRTP", zap.Stringer("crypto", local))
	}

	s.srtp.modeB = e.srtpOfferBy(s.routing, s.snap.Dialled)
	offered, err := e.offerSRTP(s.wb, s.srtp.modeB)
	if err != nil {
		return s.refuse(500, "Server Internal Error", "SRTP: "+err.Error())
	}
	s.srtp.offeredB = offered
	return true
}

// srtpOfferForTarget is what to offer a party callctl dials itself in a
// call (a fallback transfer, a party's REFER, a forward): a dial string's
// route (else the trunk) decides, as for the call's own B leg; a SIP URI
// target gets the trunk's setting.
func (e *Engine) srtpOfferForTarget(target string, uri gosip.Uri) SRTPOffer {
	if strings.Contains(target, ":") {
		return e.cfg.TrunkSRTP
	}
	return e.srtpOfferFor(uri.User)
}

// offerSRTP gives w fresh keys, one line per configured suite, when mode
// asks for SRTP, and returns them (nil for SRTPOff).
func (e *Engine) offerSRTP(w *media.SDPWriter, mode SRTPOffer) ([]media.Crypto, error) {
	if mode == SRTPOff {
		return nil, nil
	}
	var offered []media.Crypto
	for i, suite := range e.srtpSuites() {
		c, err := media.NewCrypto(uint32(i+1), suite)
		if err != nil {
			return nil, err
		}
		offered = append(offered, c)
	}
	w.SetSRTP(offered, mode == SRTPMandatory)
	return offered, nil
}

// answerSRTP applies an answer to an SRTP offer callctl made with
// offerSRTP: the answer's line under one of the offered tags and suites
// (RFC 4568 7.1.2) keys ep, and w says the line from then on. No matching
// line is an error when SRTP was mandatory (or the answer is RTP/SAVP),
// else plain RTP on that leg. It returns the line in use, zero for RTP.
func answerSRTP(ep *media.Endpoint, w *media.SDPWriter, mode SRTPOffer, offered []media.Crypto, info media.MediaInfo) (media.Crypto, error) {
	if mode == SRTPOff {
		if info.SRTP() {
			return media.Crypto{}, fmt.Errorf("%w: the answer is RTP/SAVP to a plain RTP offer", media.ErrBadSDP)
		}
		return media.Crypto{}, nil
	}
	for _, a := range info.Crypto {
		for _, o := range offered {
			if a.Tag != o.Tag || a.Suite != o.Suite {
				continue
			}
			if err := ep.SetSRTP(a, o); err != nil {
				return media.Crypto{}, err
			}
			w.SetSRTP([]media.Crypto{o}, info.SRTP())
			return o, nil
		}
	}
	if mode == SRTPMandatory || info.SRTP() {
		return media.Crypto{}, fmt.Errorf("%w: the answer has no a=crypto line matching callctl's offer (srtp is %s)",
			media.ErrBadSDP, map[bool]string{true: SRTPMandatoryName, false: SRTPBestEffortName}[mode == SRTPMandatory])
	}
	// Best effort declined: plain RTP on that leg.
	w.ClearSRTP()
	ep.ClearSRTP()
	return media.Crypto{}, nil
}

// srtpFromCallee applies the callee's SDP to its leg's SRTP: the first
// time, its answer picks one of the lines offered (by tag and suite); later
// SDPs may change its key. An answer without an acceptable line is an error
// when SRTP was mandatory, and plain RTP when it was best effort.
func (s *Session) srtpFromCallee(info media.MediaInfo) error {
	if s.srtp.localB.Suite != media.SuiteNone {
		// Keyed already (its first answer, or a party that joined with
		// its line): a later SDP may change the key.
		s.rekey(s.b, info)
		return nil
	}
	local, err := answerSRTP(s.eb, s.wb, s.srtp.modeB, s.srtp.offeredB, info)
	if err != nil {
		return err
	}
	if local.Suite != media.SuiteNone {
		s.srtp.localB = local
		s.log.Debug("callee leg is SRTP", zap.Stringer("crypto", local))
	}
	return nil
}

// rekey follows a new key in a later SDP of a party on an SRTP leg (RFC
// 4568 §7.1.4: a re-INVITE may change the keys): the line under callctl's
// tag, or else any usable one of callctl's suite.
func (s *Session) rekey(l *sip.Leg, info media.MediaInfo) {
	local := s.srtp.localA
	if l == s.b {
		local = s.srtp.localB
	}
	if local.Suite == media.SuiteNone || (l != s.a && l != s.b) {
		return
	}
	for _, c := range info.Crypto {
		if c.Suite == local.Suite {
			if err := s.endpoint(l).SetSRTP(c, local); err != nil {
				s.log.Warn("SRTP rekey failed", zap.Error(err))
			}
			return
		}
	}
}

// srtpLegReplaced forgets the SRTP of a leg whose party is replaced by
// another (a fallback transfer, a party's REFER, a join, a forward while
// ringing): the caller of this sets the new party's line and, for a callee
// callctl dials, what it offered (srtpNewCallee); an endpoint kept for the
// new party speaks plain RTP until then.
func (s *Session) srtpLegReplaced(caller bool) {
	if caller {
		s.srtp.localA = media.Crypto{}
		return
	}
	s.srtp.localB, s.srtp.offeredB, s.srtp.modeB = media.Crypto{}, nil, SRTPOff
	if s.eb != nil {
		s.eb.ClearSRTP()
	}
}

// srtpNewCallee records what callctl offered a callee it dialled in the
// callee's place (a forward while ringing): its answer is then applied by
// srtpFromCallee, as for the call's first callee.
func (s *Session) srtpNewCallee(mode SRTPOffer, offered []media.Crypto) {
	s.srtp.modeB, s.srtp.offeredB = mode, offered
}

func suiteList(ss []media.SRTPSuite) string {
	out := ""
	for i, x := range ss {
		if i > 0 {
			out += ", "
		}
		out += x.String()
	}
	return out
}
