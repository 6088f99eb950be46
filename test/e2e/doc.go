// Package e2e checks callctl end to end against real SIP peers: each test
// starts callctl in-process (internal/app, on its own free ports), puts SIPp
// or baresip on either side of it (test/peers, test/sipp) and reads the call
// back from three places: the peers' verdicts (SIPp's exit code, baresip's
// events and RTP counters), a packet capture of what reached the far end, and
// callctl's own session events and counters. Each test is one acceptance
// point of issue 2 (calls_test.go) or issue 3 (ops_test.go: the operations
// hold, transfer, forward, hangup, close and DTMF), named for the behaviour
// it checks.
//
// The tests run with `go test ./...`; they need sip-tester, baresip-core, sox
// and tshark (see ../../../shared/TESTING.md) and root or CAP_NET_RAW for the
// capture. `go test -short` skips them where a peer is missing.
package e2e
