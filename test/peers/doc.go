// Package peers runs real SIP peers — SIPp and baresip — from Go tests, so
// callctl's tests talk to software nobody here wrote (see
// ../../../shared/TESTING.md for how these peers behave on loopback).
//
// Every helper takes the test and cleans up after itself with t.Cleanup: a
// process it started is stopped by its PID and waited for, its logs stay in the
// test's temporary directory and are printed when the test failed. Ports are
// chosen free on 127.0.0.1 and never handed out twice, not even to another test
// binary running at the same time (see FreeUDPPort). All traffic stays on
// 127.0.0.1.
//
// The peers are Debian packages (sip-tester, baresip-core, sox, tshark). When
// one is missing a test fails with the command that installs it, or is skipped
// under `go test -short`.
package peers
