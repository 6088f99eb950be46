// Package pbx checks the files that run callctl beside a real PBX or proxy —
// configs/kamailio, configs/asterisk, configs/freeswitch, configs/systemd,
// Dockerfile, docker-compose.yml and docs/deploy.md — against the tools that
// read them, and runs the shipped Kamailio configuration for real:
//
//   - kamailio_test.go starts Debian's Kamailio with configs/kamailio/kamailio.cfg
//     on loopback ports, registers baresip phones to it, runs callctl
//     in-process with Kamailio as its trunk, and checks that a call between
//     two registered phones goes through callctl, carries audio, and can be
//     held, resumed and blind-transferred through the session engine across
//     the record-routing proxy. Kamailio's sipdump of every message it
//     relayed is the SIP ladder the assertions and failure reports read.
//     Two more tests run the config's dispatcher section with two callctl
//     nodes: calls spread round-robin, and a draining node is skipped.
//   - cluster_test.go puts the dispatcher in front of three callctl
//     daemons whose embedded NATS servers are one cluster (issue 12's
//     acceptance b): 30 calls (SIPp parties and baresip phones), listed by
//     every node, operated from a node that does not carry them, and one
//     node killed with kill -9 while the survivors take its calls over.
//   - files_test.go checks the files no test here can run: `kamailio -c`
//     and `docker-compose config -q` on the shipped files, `systemd-analyze
//     verify` and the hardening of the systemd unit, the Dockerfile's stages,
//     user and health check (against a running callctl's /healthz),
//     well-formed FreeSWITCH XML, the Asterisk lab's addresses against
//     docker-compose.yml, and that every configs/ path, callctl setting and
//     CALLCTL_ variable docs/deploy.md names exists.
//   - architecture_test.go checks that every repository path, file name and
//     Go name docs/architecture.md writes in backquotes exists, and that it
//     names every package under internal/.
//
// The tests need kamailio, baresip-core, sox and docker-compose (Debian
// packages; scripts/install-test-deps.sh installs them). `go test -short`
// skips a test whose tool is missing; otherwise a missing tool fails it with
// the command that installs it. All traffic stays on 127.0.0.1.
package pbx
