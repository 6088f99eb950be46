package sip

import (
	"hash/maphash"
	"sync"
	"time"

	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// answered remembers, for 64*T1, the server transactions callctl ended
// itself right after their final response: INVITEs answered 2xx and BYEs.
// sipgo would keep each such transaction (its request, its response and
// a timer) for 64*T1 after the response only to absorb retransmissions
// (RFC 6026 7.1 Timer L; RFC 3261 17.2.2 Timer J), and its Timer L is
// not stopped even when the transaction is terminated. At 1,000 calls/s
// that was ~13 KB per call held for 32 s. A record here is ~40 bytes.
type answered struct {
	seed maphash.Seed

	mu    sync.Mutex
	m     map[uint64]answer
	order []answeredAt // insertion order, which is expiry order
}

type answer struct {
	status  int
	expires int64 // unix nanoseconds
}

type answeredAt struct {
	key     uint64
	expires int64
}

// maxAnswered bounds the records (beyond it the oldest go first): at 1,000
// calls/s a call leaves two for 32 s, 64,000 in all.
const maxAnswered = 1 << 18

func newAnswered() *answered {
	return &answered{seed: maphash.MakeSeed(), m: make(map[uint64]answer)}
}

// key is the request's server transaction (RFC 3261 17.2.3: top Via
// branch and sent-by, and the method), as sipgo matches it, hashed: a
// 64-bit collision would absorb one real request, once in 2^64.
func (r *answered) key(req *gosip.Request) (uint64, bool) {
	k, err := gosip.ServerTxKeyMake(req)
	if err != nil {
		return 0, false
	}
	return maphash.String(r.seed, k), true
}

// add records that req's transaction was answered status.
func (r *answered) add(req *gosip.Request, status int) {
	k, ok := r.key(req)
	if !ok {
		return
	}
	now := time.Now().UnixNano()
	exp := now + int64(64*t1())
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sweepLocked(now)
	if len(r.order) >= maxAnswered {
		r.dropLocked(r.order[0])
		r.order = r.order[1:]
	}
	r.m[k] = answer{status: status, expires: exp}
	r.order = append(r.order, answeredAt{key: k, expires: exp})
}

// status returns what req's transaction was answered, if it is a
// retransmission of one recorded.
func (r *answered) status(req *gosip.Request) (int, bool) {
	k, ok := r.key(req)
	if !ok {
		return 0, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.m[k]
	if !ok || a.expires < time.Now().UnixNano() {
		return 0, false
	}
	return a.status, true
}

func (r *answered) sweepLocked(now int64) {
	i := 0
	for i < len(r.order) && r.order[i].expires < now {
		r.dropLocked(r.order[i])
		i++
	}
	r.order = r.order[i:]
}

func (r *answered) dropLocked(at answeredAt) {
	if a, ok := r.m[at.key]; ok && a.expires == at.expires {
		delete(r.m, at.key)
	}
}

// endAnswered ends a server transaction whose final response went out,
// and records it so retransmissions of its request are still answered
// (absorbed, for an INVITE's 2xx) without it.
func (a *Agent) endAnswered(tx gosip.ServerTransaction, req *gosip.Request, status int) {
	a.answered.add(req, status)
	tx.Terminate()
}

// absorbRetransmission handles a request that retransmits one callctl
// answered and ended (endAnswered): an INVITE answered 2xx is absorbed,
// as in RFC 6026's Accepted state (the leg retransmits the 2xx itself
// until the ACK, RFC 3261 13.3.1.4); any other gets its answer again
// (RFC 3261 17.2.2). It reports whether req was one.
func (a *Agent) absorbRetransmission(req *gosip.Request, tx gosip.ServerTransaction) bool {
	status, ok := a.answered.status(req)
	if !ok {
		return false
	}
	if req.Method != gosip.INVITE {
		a.respond(tx, req, status, reasonFor(status), nil)
	}
	tx.Terminate()
	a.log.Debug("retransmission absorbed", zap.String("method", string(req.Method)), callIDField(req))
	return true
}

func reasonFor(status int) string {
	if status == 200 {
		return "OK"
	}
	return "Call/Transaction Does Not Exist"
}
