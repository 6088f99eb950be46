package session

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/callctl/callctl/internal/media"
	"github.com/callctl/callctl/internal/sip"
	"go.uber.org/zap"
)

// A Keeper keeps the records of answered live calls where they outlive the
// process (package store's Writer). Put and Remove must not block: they
// are called from a session's goroutine.
type Keeper interface {
	Put(key string, value []byte)
	Remove(key string)
	Adopt(key string, revision uint64)
}

// recordFormat is the version of record's layout; a record of another
// format is not re-adopted.
const recordFormat = 1

// record is what is kept of a live call (docs/design.md, "State that outlives
// the process"): enough for another process to re-INVITE both parties
// onto its relay and go on with the session. Written at state changes,
// never per packet.
type record struct {
	Format int       `json:"format"`
	Node   string    `json:"node"` // the owner
	Saved  time.Time `json:"saved"`

	ID         string    `json:"id"`
	State      State     `json:"state"`
	Caller     Party     `json:"caller"`
	Callee     Party     `json:"callee"`
	Dialled    string    `json:"dialled"`
	Start      time.Time `json:"start"`
	Answer     time.Time `json:"answer"`
	StateSince time.Time `json:"state_since"`
	Ops        []string  `json:"ops,omitempty"`

	// Caller and callee legs, and what each party last sent callctl and
	// callctl last sent it.
	Legs    [2]sip.Dialog      `json:"legs"`
	From    [2]string          `json:"from_sdp"`
	To      [2]string          `json:"to_sdp"`
	Origins [2]media.SDPOrigin `json:"origins"`
	Hold    [2]bool            `json:"hold"`
	AllowB  string             `json:"allow_b,omitempty"`
	// Ports are the relay's RTP ports toward each party: after a crash
	// they rest before they serve another call (recover.go).
	Ports [2]int `json:"ports"`
	// SRTP says a leg's media is SRTP: its keys are not kept.
	SRTP bool `json:"srtp,omitempty"`
}

// storable reports whether a record is written in state st: the states of
// a settled call. In the middle of a transfer or forward the record of the
// call before it stands (a process that dies then leaves the call as it
// was; see docs/cluster.md).
func storable(st State) bool {
	switch st {
	case InCall, CallerOnHold, CalleeOnHold, OnHold, TransferFailed:
		return true
	}
	return false
}

// recordMark tells, cheaply, whether what a record holds may have changed
// since it was written: the state, the legs, the hold flags and which SDP
// bodies the session holds (each change of one is a new slice).
type recordMark struct {
	state                  State
	a, b                   *sip.Leg
	toA, toB, fromA, fromB *byte
	holdA, holdB           bool
	ops                    int
}

func first(b []byte) *byte {
	if len(b) == 0 {
		return nil
	}
	return &b[0]
}

func (s *Session) mark() recordMark {
	return recordMark{state: s.state(), a: s.a, b: s.b, toA: first(s.lastToA), toB: first(s.lastToB),
		fromA: first(s.rawFromA), fromB: first(s.rawFromB), holdA: s.holdA, holdB: s.holdB, ops: len(s.opsApplied)}
}

// persist writes the session's record if it may have changed and the call
// is settled, or removes it once the call ended. Called by the session's
// goroutine after each batch of events: comparing a recordMark costs
// nothing next to the JSON and the write it saves.
func (s *Session) persist() {
	k := s.e.cfg.Keeper
	if k == nil || !s.answered || s.b == nil {
		return
	}
	m := s.mark()
	if m == s.written {
		return
	}
	if m.state.Ended() {
		s.unpersist()
		return
	}
	if !storable(m.state) {
		return
	}
	s.written = m
	b, err := json.Marshal(s.record())
	if err != nil {
		s.log.Error("call record not kept", zap.Error(err))
		return
	}
	k.Put(s.id, b)
	s.kept = true
}

// unpersist removes the session's record, if one was written.
func (s *Session) unpersist() {
	if k := s.e.cfg.Keeper; k != nil && s.kept {
		k.Remove(s.id)
		s.kept = false
	}
}

func (s *Session) record() record {
	snap := s.Snapshot()
	r := record{
		Format: recordFormat, Node: s.e.cfg.Node, Saved: time.Now(),
		ID: s.id, State: snap.State, Caller: snap.Caller, Callee: snap.Callee, Dialled: snap.Dialled,
		Start: snap.Start, Answer: snap.Answer, StateSince: snap.StateSince, Ops: slices.Clone(s.opsApplied),
		Legs:    [2]sip.Dialog{s.a.Dialog(), s.b.Dialog()},
		From:    [2]string{string(s.rawFromA), string(s.rawFromB)},
		To:      [2]string{string(s.lastToA), string(s.lastToB)},
		Origins: [2]media.SDPOrigin{s.wa.Origin(), s.wb.Origin()},
		Hold:    [2]bool{s.holdA, s.holdB},
		AllowB:  s.allowB,
		Ports:   [2]int{s.ea.Port(), s.eb.Port()},
		SRTP:    s.srtp.localA.Suite != media.SuiteNone || s.srtp.localB.Suite != media.SuiteNone,
	}
	return r
}

// errBadRecord is a record that cannot be re-adopted as it is.
var errBadRecord = errors.New("session: call record not usable")

// decodeRecord parses and checks a record read from the store: it is
// input like any other (another node, another version, a hand edit).
func decodeRecord(key string, b []byte) (*record, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errBadRecord, key, err)
	}
	switch {
	case r.Format != recordFormat:
		return &r, fmt.Errorf("%w: %s: format %d, want %d", errBadRecord, key, r.Format, recordFormat)
	case r.ID != key || len(r.ID) != 16 || !isHex(r.ID):
		return &r, fmt.Errorf("%w: %s: id %q is not its key, 16 hex digits", errBadRecord, key, r.ID)
	case !r.State.Valid() || r.State.Ended():
		return &r, fmt.Errorf("%w: %s: state %q is not a live state", errBadRecord, key, r.State)
	case r.From[0] == "" || r.From[1] == "" || r.To[0] == "" || r.To[1] == "":
		return &r, fmt.Errorf("%w: %s: a party's SDP is missing", errBadRecord, key)
	}
	return &r, nil
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

// RecordOwner is the node a stored record names as its owner ("" when it
// is not a record).
func RecordOwner(value []byte) string {
	// Every node's watcher sees every record written (cluster.go), most of
	// them its own: decoding the whole record (a few KB: SDPs, dialogs) to
	// read one field cost ~20 µs a write. The record's layout puts node
	// second, after format, so reading the top-level keys in order stops
	// after two. Matching is json.Unmarshal's (a key equal to "node" under
	// case folding); unlike it, the first such key counts, and what follows
	// it is not checked: a record that is not JSON past its owner still
	// names it, which is all this is asked.
	dec := json.NewDecoder(bytes.NewReader(value))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return ""
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return ""
		}
		key, _ := t.(string)
		if strings.EqualFold(key, "node") {
			var node string
			if dec.Decode(&node) != nil {
				return ""
			}
			return node
		}
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return ""
		}
	}
	return ""
}

// WithOwner returns a stored record with node as its owner, for a claim.
// A record this version cannot re-adopt keeps the rest as it is (whoever
// claims it ends its call, recover.go).
func WithOwner(value []byte, node string) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(value, &m); err != nil || m == nil {
		return nil, fmt.Errorf("%w: not a JSON object", errBadRecord)
	}
	n, _ := json.Marshal(node)
	m["node"] = n
	return json.Marshal(m)
}
