package config

import (
	"time"
)

// Config is callctl's whole configuration. The zero value is not useful: start
// from Default() and overlay a file, the environment and flags (see Load).
type Config struct {
	SIP      SIP      `yaml:"sip"`
	Trunk    Trunk    `yaml:"trunk"`
	Routes   []Route  `yaml:"routes"`
	Calls    Calls    `yaml:"calls"`
	Media    Media    `yaml:"media"`
	Listen   Listen   `yaml:"listen"`
	API      API      `yaml:"api"`
	Clients  []Client `yaml:"clients"`
	Roles    []Role   `yaml:"roles"`
	Audit    Audit    `yaml:"audit"`
	Admin    Admin    `yaml:"admin"`
	Log      Log      `yaml:"log"`
	Shutdown Shutdown `yaml:"shutdown"`
	Cluster  Cluster  `yaml:"cluster"`
}

// Client is one API client: who it is, what it may do, which calls it sees.
type Client struct {
	// Name identifies the client in logs and the audit trail.
	Name string `yaml:"name"`
	// TokenHash is "sha256:<64 hex digits>" of the client's bearer token
	// (`callctl token new` prints a token and its hash). The token itself is
	// never stored.
	TokenHash string `yaml:"token_hash"`
	// Privileges: sessions.view, sessions.hold, sessions.transfer,
	// sessions.forward, sessions.hangup, sessions.dtmf, sessions.listen,
	// audit.view, config.reload.
	Privileges []string `yaml:"privileges"`
	// Roles name entries of roles whose privileges the client also gets.
	Roles []string `yaml:"roles"`
	// Scope, when set, limits the client to sessions whose caller or callee
	// number matches one of these regular expressions (whole number).
	Scope []string `yaml:"scope"`
	// Targets, when set (here or in one of the client's roles), limits the
	// numbers the client may transfer or forward to: the dial string, or the
	// user part of a SIP URI, must match one of these regular expressions
	// (whole number). Empty everywhere means any number.
	Targets []string `yaml:"targets"`
}

// Role is a named bundle of privileges.
type Role struct {
	Name       string   `yaml:"name"`
	Privileges []string `yaml:"privileges"`
	// Targets are transfer/forward target patterns the role's clients get
	// (see Client.Targets).
	Targets []string `yaml:"targets"`
}

// Admin is an extra all-privileges client for automation.
type Admin struct {
	// Token, when set, is accepted as an admin bearer token. Prefer the
	// environment variable CALLCTL_ADMIN_TOKEN to writing it in a file.
	Token string `yaml:"token"`
}

// Audit is the audit trail and call records store.
type Audit struct {
	// Path is the SQLite database file (created if missing).
	Path string `yaml:"path"`
}

// SIP is the signalling side: where callctl listens and whom it accepts.
type SIP struct {
	// Listen is the host:port callctl binds for SIP on every transport.
	Listen string `yaml:"listen"`
	// Transports lists the transports to listen on: "udp", "tcp".
	Transports []string `yaml:"transports"`
	// Advertise is the host written into Via and Contact; empty means the
	// Listen host.
	Advertise string `yaml:"advertise"`
	// Allow is the inbound allow-list: CIDR prefixes (or bare addresses) whose
	// requests are served. Others get 403 and a security log line.
	Allow []string `yaml:"allow"`
	// UserAgent is the User-Agent / Server header value.
	UserAgent string `yaml:"user_agent"`
	// Refused is what a request from a source outside Allow gets: "drop"
	// (nothing: no answer, no state) or "403" (one stateless 403, never
	// retransmitted).
	Refused string `yaml:"refused"`
	// Flood limits the requests each source may send.
	Flood Flood `yaml:"flood"`
	// Scanners are User-Agent substrings (case-insensitive) of SIP scanners
	// whose requests are dropped unanswered.
	Scanners []string `yaml:"scanners"`
	// LogInterval is how often refused, shed and unparsable traffic is
	// summarised in the log (one line per kind and source).
	LogInterval time.Duration `yaml:"log_interval"`
	// TLS is SIP over TLS (RFC 3261 26): its listener, callctl's
	// certificate and how TLS peers are verified.
	TLS SIPTLS `yaml:"tls"`
}

// SIPTLS configures SIP over TLS: the listener (sips: URIs, transport=tls)
// and the B legs to trunks and routes whose transport is tls.
type SIPTLS struct {
	// Listen is the host:port of the TLS listener (e.g. 127.0.0.1:5071);
	// empty means no TLS listener.
	Listen string `yaml:"listen"`
	// CertFile and KeyFile are callctl's PEM certificate (chain) and
	// private key, presented to TLS callers and, when asked, to TLS
	// callees. Required with Listen. Reloaded on SIGHUP.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// CAFile is a PEM bundle of the CAs callctl trusts for the
	// certificates of the TLS peers it dials (and of TLS callers when
	// ClientAuth is require); empty means the system roots.
	CAFile string `yaml:"ca_file"`
	// MinVersion is the lowest TLS version accepted: "1.2" or "1.3".
	MinVersion string `yaml:"min_version"`
	// ClientAuth is what the listener asks of TLS callers: "none" (no
	// client certificate) or "require" (a certificate signed by CAFile).
	ClientAuth string `yaml:"client_auth"`
}

// Flood is the per-source request limit (like Kamailio's pike): a token
// bucket per source address, checked before any transaction exists.
type Flood struct {
	// Rate is the requests per second a source may send (ACKs excluded);
	// 0 turns the limit off.
	Rate float64 `yaml:"rate"`
	// Burst is how many requests a source may send at once above Rate.
	Burst int `yaml:"burst"`
	// BlockAfter is how long a source may keep exceeding Rate before it
	// is blocked; 0 never blocks.
	BlockAfter time.Duration `yaml:"block_after"`
	// BlockFor is how long a blocked source's requests are all dropped.
	BlockFor time.Duration `yaml:"block_for"`
}

// Trunk is the PBX callctl sends B legs to by default.
type Trunk struct {
	// Address is the PBX host:port.
	Address string `yaml:"address"`
	// Transport toward the PBX: "udp", "tcp" or "tls" (sip.tls).
	Transport string `yaml:"transport"`
	// SRTP is what callctl offers B legs to the PBX: "off" (RTP/AVP),
	// "best-effort" (RTP/AVP with a=crypto: SRTP if the PBX answers with
	// a key) or "mandatory" (RTP/SAVP; an answer without a key ends the
	// call). SDES keys, RFC 4568.
	SRTP string `yaml:"srtp"`
	// LargeOver is how a request to the PBX travels when it is too large
	// for UDP (over 1,300 bytes, RFC 3261 18.1.1) while the leg is on UDP:
	// "tcp" (that request goes over TCP, or as a large UDP datagram if the
	// PBX refuses the connection) or "udp" (always a large UDP datagram,
	// for a PBX without TCP).
	LargeOver string `yaml:"large_over"`
	// Username and Password answer a 401/407 digest challenge from the PBX.
	// Empty Username means no credentials. Password is a secret: it is never
	// logged, and Redacted hides it.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// Route maps dialled numbers to a target URI instead of the trunk.
type Route struct {
	// Match is a regular expression matched against the whole dialled number.
	Match string `yaml:"match"`
	// Target is a SIP URI; "{number}" in it is replaced by the dialled number.
	Target string `yaml:"target"`
	// Transport to reach Target: "udp", "tcp" or "tls" (default: the
	// trunk's).
	Transport string `yaml:"transport"`
	// SRTP is what to offer Target, as trunk.srtp (default: the trunk's).
	SRTP string `yaml:"srtp"`
	// LargeOver is trunk.large_over for Target's host (default: the
	// trunk's).
	LargeOver string `yaml:"large_over"`
}

// Calls holds call-handling limits and timers.
type Calls struct {
	// MaxSessions is the number of live sessions above which a new INVITE
	// gets 503 with Retry-After: a hard bound, whatever the burst.
	MaxSessions int `yaml:"max_sessions"`
	// MaxPerSource, when not 0, is how many live sessions the calls of one
	// source address may hold; above it a new INVITE gets 503.
	MaxPerSource int `yaml:"max_per_source"`
	// RetryAfter is the Retry-After value sent with that 503 (whole seconds).
	RetryAfter time.Duration `yaml:"retry_after"`
	// RingTimeout is how long the B leg may ring before the call is ended as
	// not answered (480 to the caller).
	RingTimeout time.Duration `yaml:"ring_timeout"`
	// EndedRetention is how long an ended session stays readable.
	EndedRetention time.Duration `yaml:"ended_retention"`
	// HoldDirection is the SDP direction a client's hold offers each party:
	// "sendonly" or "inactive".
	HoldDirection string `yaml:"hold_direction"`
	// MusicOnHold is an 8 kHz mono WAV (PCM16, µ-law or A-law) played to each
	// held party; empty means a built-in tone.
	MusicOnHold string `yaml:"music_on_hold"`
	// TransferTimeout is how long a blind transfer may wait for the final
	// NOTIFY before it is reported failed.
	TransferTimeout time.Duration `yaml:"transfer_timeout"`
	// TransferGrace is how long after a successful transfer callctl waits for
	// the transferee's peer to end the old dialog before it sends BYE itself.
	TransferGrace time.Duration `yaml:"transfer_grace"`
	// TransferFallback lets callctl connect the target itself when the
	// transferee refuses REFER.
	TransferFallback bool `yaml:"transfer_fallback"`
	// PartyRefer is what callctl does with a REFER a party sends in its call
	// (RFC 3515): "perform" (callctl dials the Refer-To target itself and
	// bridges it to the other party, or joins two calls for a Replaces),
	// "relay" (REFER to the other party, its answer and NOTIFYs relayed
	// back) or "refuse" (403).
	PartyRefer string `yaml:"party_refer"`
	// TransferHosts are the hosts (IP addresses or DNS names, no port) a
	// SIP URI transfer or forward target may name; empty means the trunk's
	// host and the hosts of the route targets. Number targets always go
	// through the routing table.
	TransferHosts []string `yaml:"transfer_hosts"`
	// DTMFDuration is the tone length of each digit callctl sends.
	DTMFDuration time.Duration `yaml:"dtmf_duration"`
	// DTMFGap is the silence between two digits callctl sends.
	DTMFGap time.Duration `yaml:"dtmf_gap"`
	// SessionTimer is the session interval (RFC 4028 Session-Expires)
	// callctl asks for on each leg and uses where it is the refresher;
	// whole seconds, at least MinSE; 0 means callctl starts no session
	// timer itself (it still honours a peer's).
	SessionTimer time.Duration `yaml:"session_timer"`
	// MinSE is the smallest session interval callctl accepts (Min-SE);
	// whole seconds, at least 90 s (RFC 4028 5).
	MinSE time.Duration `yaml:"min_se"`
	// SessionTimerUnit is for tests only (no key, no variable): how long
	// one second of Session-Expires lasts on callctl's clocks; 0 means a
	// second.
	SessionTimerUnit time.Duration `yaml:"-"`
}

// Media is the RTP relay.
type Media struct {
	// IP is the local address RTP sockets bind to.
	IP string `yaml:"ip"`
	// Advertise is the address written into SDP; empty means IP.
	Advertise string `yaml:"advertise"`
	// RTPPorts is the inclusive port range "LO-HI" for RTP (even) and RTCP (odd).
	RTPPorts string `yaml:"rtp_ports"`
	// PortRest is how long a released port pair rests before reuse.
	PortRest time.Duration `yaml:"port_rest"`
	// Timeout ends a call when a party that is supposed to send RTP (its
	// SDP says sendrecv or sendonly) sent none for this long; 0 disables it.
	Timeout time.Duration `yaml:"timeout"`
	// HoldTimeout is the same for a party that is not supposed to send
	// (held, or holding with recvonly/inactive) and sends no RTCP either:
	// nothing at all from it for this long ends the call; 0 disables it.
	HoldTimeout time.Duration `yaml:"hold_timeout"`
	// Latching says which sources a leg takes its party's media from:
	// "strict" (only the SDP's IP address; the port may latch) or "nat"
	// (the first packet after an SDP latches, from any address, once).
	Latching string `yaml:"latching"`
	// SRTPInbound says which callers are taken by the security of their
	// offer: "accept" (SRTP and plain RTP alike), "require" (an offer
	// without a usable a=crypto gets 488) or "refuse" (RTP/SAVP gets 488;
	// every caller leg is plain RTP).
	SRTPInbound string `yaml:"srtp_inbound"`
	// SRTPSuites are the SDES crypto-suites callctl accepts and offers, in
	// order of preference: AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32,
	// AEAD_AES_128_GCM.
	SRTPSuites []string `yaml:"srtp_suites"`
}

// Listen is listen-in: WebRTC from callctl to supervisors' browsers.
type Listen struct {
	// ICEIPs are the local addresses offered to browsers as ICE host
	// candidates; empty means media.ip.
	ICEIPs []string `yaml:"ice_ips"`
	// NAT1To1IPs replace those addresses in the candidates, for a server
	// behind a 1:1 NAT.
	NAT1To1IPs []string `yaml:"nat_1to1_ips"`
	// UDPPorts is the port range "LO-HI" of listeners' ICE; empty means any
	// ephemeral port.
	UDPPorts string `yaml:"udp_ports"`
	// SinglePort, when not 0, serves every listener on this one UDP port.
	SinglePort int `yaml:"single_port"`
	// ICETimeout ends a listener whose browser went silent for this long.
	ICETimeout time.Duration `yaml:"ice_timeout"`
}

// API is the HTTP API and console (served from issue 4 on).
type API struct {
	// Listen is the host:port the HTTP API and console bind.
	Listen string `yaml:"listen"`
	// TLSCert and TLSKey are PEM files; both set means HTTPS.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// EventBuffer is how many recent events a reconnecting client can
	// resume from.
	EventBuffer int `yaml:"event_buffer"`
}

// Log configures zap.
type Log struct {
	// Level: debug, info, warn, error.
	Level string `yaml:"level"`
	// Format: "console" or "json".
	Format string `yaml:"format"`
}

// Cluster is where live-call state is kept so calls outlive the process
// (docs/cluster.md): NATS JetStream key-value buckets, in an embedded NATS
// server or an external NATS system.
type Cluster struct {
	// Node is this node's name in the store: the owner of its calls. It
	// must be unique among the nodes sharing a store and stay the same
	// across restarts (a restarted node re-adopts the calls of its name).
	// Empty means the host name.
	Node string `yaml:"node"`
	// Store is "embedded" (an in-process NATS server with a JetStream file
	// store in DataDir), "nats" (the external NATS system at NATS.URL) or
	// "off" (nothing outlives the process).
	Store string `yaml:"store"`
	// DataDir is the embedded server's JetStream file store; empty means a
	// directory "callctl-nats" beside audit.path.
	DataDir string `yaml:"data_dir"`
	// NATS is how callctl reaches an external NATS system (store: nats).
	NATS NATS `yaml:"nats"`
	// Replicas is how many copies JetStream keeps of each record (1, or 3
	// or 5 in a NATS cluster of at least that many servers).
	Replicas int `yaml:"replicas"`
	// Embedded joins the embedded servers of several nodes into one NATS
	// cluster (store: embedded).
	Embedded Embedded `yaml:"embedded"`
	// Heartbeat is how often the node says it is alive; NodeTimeout how
	// long after its last heartbeat the others take it for dead and claim
	// its calls.
	Heartbeat   time.Duration `yaml:"heartbeat"`
	NodeTimeout time.Duration `yaml:"node_timeout"`
}

// Embedded is the embedded NATS server's part in a cluster of nodes.
type Embedded struct {
	// Listen is the host:port where the embedded server takes the other
	// nodes' servers (NATS cluster routes); empty means a lone server.
	Listen string `yaml:"listen"`
	// Routes are the other nodes' embedded.listen addresses (host:port).
	Routes []string `yaml:"routes"`
	// Name is the NATS cluster's name, the same on every node.
	Name string `yaml:"name"`
	// RouteSecretFile is a file holding the secret the servers present to
	// each other on their routes, the same on every node. Required with
	// Listen: without it anyone who reaches the route port joins the NATS
	// cluster and reads and writes every call record. The file, not the
	// secret, is in the configuration, so printing it reveals nothing.
	RouteSecretFile string `yaml:"route_secret_file"`
	// TLS encrypts the routes, each node verifying the other's certificate.
	TLS RouteTLS `yaml:"tls"`
}

// RouteTLS is TLS on the embedded servers' routes: every route is mutual
// (each node is a client of some routes and a server of others), so a node
// needs its own certificate and the CA that signs all of them.
type RouteTLS struct {
	// CertFile and KeyFile are this node's certificate and key (PEM); the
	// certificate must name the host or IP address the other nodes give
	// for it in their routes.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// CAFile holds the CAs that sign the nodes' certificates (PEM).
	CAFile string `yaml:"ca_file"`
}

// NATS is the connection to an external NATS system.
type NATS struct {
	// URL lists the servers, comma-separated (nats://10.0.0.5:4222,
	// tls://nats.example:4222).
	URL string `yaml:"url"`
	// Credentials is a NATS credentials file (a user JWT and its NKey
	// seed); empty means none.
	Credentials string `yaml:"credentials"`
	// CAFile verifies the servers' TLS certificates (empty: the system
	// roots); CertFile and KeyFile are callctl's client certificate when
	// the servers ask for one.
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Shutdown configures the SIGTERM drain.
type Shutdown struct {
	// DrainTimeout is how long live calls may go on after SIGTERM before they
	// are ended (ABORTED).
	DrainTimeout time.Duration `yaml:"drain_timeout"`
}

// Default returns the configuration callctl runs with when no file is given.
func Default() Config {
	return Config{
		SIP: SIP{
			Listen:     "127.0.0.1:5070",
			Transports: []string{"udp", "tcp"},
			Allow:      []string{"127.0.0.0/8", "::1/128"},
			UserAgent:  "callctl",
			Refused:    "drop",
			Flood: Flood{
				Rate:       100,
				Burst:      200,
				BlockAfter: 3 * time.Second,
				BlockFor:   60 * time.Second,
			},
			Scanners:    DefaultScanners(),
			LogInterval: 10 * time.Second,
			TLS:         SIPTLS{MinVersion: "1.2", ClientAuth: "none"},
		},
		Trunk: Trunk{
			Address:   "127.0.0.1:5060",
			Transport: "udp",
			SRTP:      "off",
			LargeOver: "tcp",
		},
		Calls: Calls{
			MaxSessions:      1000,
			RetryAfter:       30 * time.Second,
			RingTimeout:      60 * time.Second,
			EndedRetention:   5 * time.Minute,
			HoldDirection:    "sendonly",
			TransferTimeout:  30 * time.Second,
			TransferGrace:    5 * time.Second,
			TransferFallback: true,
			PartyRefer:       "perform",
			DTMFDuration:     100 * time.Millisecond,
			DTMFGap:          100 * time.Millisecond,
			SessionTimer:     1800 * time.Second,
			MinSE:            90 * time.Second,
		},
		Media: Media{
			IP:          "127.0.0.1",
			RTPPorts:    "20000-29999",
			PortRest:    5 * time.Second,
			Timeout:     60 * time.Second,
			HoldTimeout: 30 * time.Minute,
			Latching:    "strict",
			SRTPInbound: "accept",
			SRTPSuites:  []string{"AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32", "AEAD_AES_128_GCM"},
		},
		Listen:   Listen{ICETimeout: 10 * time.Second},
		API:      API{Listen: "127.0.0.1:8080", EventBuffer: 10000},
		Audit:    Audit{Path: "callctl.db"},
		Log:      Log{Level: "info", Format: "console"},
		Shutdown: Shutdown{DrainTimeout: 30 * time.Second},
		Cluster: Cluster{Store: "embedded", Replicas: 1, Heartbeat: time.Second, NodeTimeout: 5 * time.Second,
			Embedded: Embedded{Name: "callctl"}},
	}
}

// Redacted returns a copy of c with its secrets (trunk.password) replaced
// by "REDACTED", for printing or logging the effective configuration.
func (c Config) Redacted() Config {
	if c.Trunk.Password != "" {
		c.Trunk.Password = "REDACTED"
	}
	if c.Admin.Token != "" {
		c.Admin.Token = "REDACTED"
	}
	return c
}

// DefaultScanners are the User-Agents of well-known SIP scanners and
// war-diallers (SIPVicious and its forks, sipcli, sip-scan, …).
func DefaultScanners() []string {
	return []string{"friendly-scanner", "sipvicious", "sipcli", "sip-scan", "sipscan", "iWar", "sundayddr", "VaxSIPUserAgent", "pplsip", "SIVuS", "smap"}
}
