package main

import "github.com/callctl/callctl/internal/loadgen"

// Report is bench/results/latest.json. Times are in the units their names
// say; CPU is callctl's user+system time from /proc/<pid>/stat.
type Report struct {
	Generated string   `json:"generated"`
	DurationS float64  `json:"duration_s"`
	Machine   Machine  `json:"machine"`
	Targets   []Target `json:"targets"`

	CallRate    *CallRate   `json:"call_rate,omitempty"`
	Concurrency []Level     `json:"concurrency,omitempty"`
	MaxCalls    int         `json:"max_calls_loss_under_0_01pct"`
	SIPp        *SIPpResult `json:"sipp_echo,omitempty"`
	Listeners   *Listeners  `json:"listeners,omitempty"`
	Hostile     *Hostile    `json:"hostile,omitempty"`
	// Extensions repeats a call-rate run and a concurrency level with 100rel
	// and session timers negotiated on both legs.
	Extensions *Extensions `json:"extensions_100rel_timers,omitempty"`
	// RSSSoak is RSS over 100,000 calls at 1,000 calls/s on one callctl.
	RSSSoak *Soak `json:"rss_soak,omitempty"`
	// Store is the call rate with cluster.store off beside embedded, and
	// Recovery the kill -9 runs (issue 12).
	Store    *StoreCompare `json:"store,omitempty"`
	Recovery []RecoveryRun `json:"recovery,omitempty"`
	Micro    []MicroResult `json:"micro,omitempty"`
	Profiles []Profile     `json:"profiles,omitempty"`
	Notes    []string      `json:"notes,omitempty"`
}

// Machine is where the figures were measured.
type Machine struct {
	Cores       int    `json:"cores"`
	CPUModel    string `json:"cpu_model"`
	MemTotalMiB int    `json:"mem_total_mib"`
	Kernel      string `json:"kernel"`
	Go          string `json:"go"`
	Commit      string `json:"commit,omitempty"`
	LoadStart   string `json:"load_avg_start"` // /proc/loadavg when the suite began
	LoadEnd     string `json:"load_avg_end"`
}

// Target is one goal of issue 6 and what the run reached.
type Target struct {
	Name    string `json:"name"`
	Goal    string `json:"goal"`
	Reached string `json:"reached"`
	Met     *bool  `json:"met"` // nil: not measured
	Note    string `json:"note,omitempty"`
}

// CallRate is the signalling load: calls without RTP, 1 s long.
type CallRate struct {
	HoldS     float64     `json:"hold_s"`
	Probes    []RateProbe `json:"probes"`
	Sustained *RateRun    `json:"sustained,omitempty"` // 60 s at the highest probe rate that passed
	Retry     *RateRun    `json:"retry,omitempty"`     // 60 s again at 80% if that failed
	// WithinSetup is 60 s at the highest probe rate that also kept the
	// set-up p99 under 20 ms, when that is a lower rate.
	WithinSetup *RateRun `json:"within_setup_target,omitempty"`
	Soak        *Soak    `json:"soak,omitempty"`
}

// RateProbe is a short run at one rate.
type RateProbe struct {
	Rate          float64           `json:"rate"`
	Seconds       float64           `json:"seconds"`
	Calls         uint64            `json:"calls"`
	Failed        uint64            `json:"failed"`
	FailedBy      map[string]uint64 `json:"failed_by,omitempty"`
	SetupP50Ms    float64           `json:"setup_p50_ms"`
	SetupP99Ms    float64           `json:"setup_p99_ms"`
	CPUPerCallUs  float64           `json:"cpu_per_call_us"`
	CPUCores      float64           `json:"cpu_cores"`
	GenCPUPerCall float64           `json:"generator_cpu_per_call_us"`
	// KernelDrops are datagrams dropped at callctl's full sockets (its SIP
	// socket, here): each costs a retransmission, 500 ms or more of set-up.
	KernelDrops uint64 `json:"kernel_drops_at_callctl"`
	Passed      bool   `json:"passed"`
}

// RateRun is a long run at one rate.
type RateRun struct {
	RateProbe
	SetupMaxMs  float64 `json:"setup_max_ms"`
	RSSStartKiB uint64  `json:"rss_start_kib"`
	RSSEndKiB   uint64  `json:"rss_end_kib"`
	RSSSamples  []RSSAt `json:"rss_samples"`
	PeakCalls   int64   `json:"peak_concurrent"`
	// Extensions is what the generator negotiated, in the extensions phase.
	Extensions *loadgen.ExtensionsResult `json:"extensions,omitempty"`
}

// RSSAt is callctl's RSS after a number of calls.
type RSSAt struct {
	Calls  uint64 `json:"calls"`
	RSSKiB uint64 `json:"rss_kib"`
}

// Soak is the RSS over the sustained run and its continuation to 100,000
// calls.
type Soak struct {
	Rate       float64 `json:"rate"`
	Calls      uint64  `json:"calls"`
	RSSSamples []RSSAt `json:"rss_samples"`
	// GrowthKiBPer10k is the least-squares slope of RSS over the second
	// half of the calls, once what recently ended calls hold has reached
	// its level (ended_retention, SIP transaction timers).
	GrowthKiBPer10k float64 `json:"growth_kib_per_10k_calls"`
	PlateauKiB      uint64  `json:"plateau_kib"` // mean RSS over the second half
	MaxKiB          uint64  `json:"max_kib,omitempty"`
}

// Level is one step of the concurrency ramp: N calls with RTP both ways.
type Level struct {
	Calls           int     `json:"calls"`
	PacketsPerS     float64 `json:"relayed_packets_per_s"`
	Sent            uint64  `json:"sent"`
	Lost            uint64  `json:"lost"`
	LostAtStart     uint64  `json:"lost_at_call_start"` // before a stream's first packet arrived
	LossPct         float64 `json:"loss_pct"`
	Reordered       uint64  `json:"reordered"`
	Duplicated      uint64  `json:"duplicated"`
	LatencyP50Us    float64 `json:"latency_p50_us"`
	LatencyP99Us    float64 `json:"latency_p99_us"`
	LatencyP999Us   float64 `json:"latency_p999_us"`
	BaseP50Us       float64 `json:"baseline_p50_us"` // the generator alone (loopback)
	BaseP99Us       float64 `json:"baseline_p99_us"`
	CPUPerPacketUs  float64 `json:"cpu_per_packet_us"`
	CPUCores        float64 `json:"cpu_cores"`
	RSSPerCallKiB   float64 `json:"rss_per_call_kib"`
	RSSKiB          uint64  `json:"rss_kib"`
	KernelDrops     uint64  `json:"kernel_drops_at_callctl"`
	GeneratorDrops  uint64  `json:"kernel_drops_at_generator"`
	GenCPUPerPacket float64 `json:"generator_cpu_per_packet_us"`
	FailedCalls     uint64  `json:"failed_calls"`
	WindowS         float64 `json:"window_s"`
	SetupP99Ms      float64 `json:"setup_p99_ms"`
	// Extensions is what the generator negotiated, in the extensions phase.
	Extensions *loadgen.ExtensionsResult `json:"extensions,omitempty"`
}

// SIPpResult is the same RTP measurement through SIPp's echo (one stream
// per call, there and back).
type SIPpResult struct {
	Calls          int     `json:"calls"`
	PacketsPerS    float64 `json:"echoed_packets_per_s"`
	LossPct        float64 `json:"loss_pct"`
	LatencyP50Us   float64 `json:"latency_p50_us"`
	LatencyP99Us   float64 `json:"latency_p99_us"`
	CPUPerPacketUs float64 `json:"cpu_per_packet_us"`
	SetupP99Ms     float64 `json:"setup_p99_ms"`
	KernelDrops    uint64  `json:"kernel_drops_at_sipp"`
	LostAtStart    uint64  `json:"lost_at_call_start"`
	Skipped        string  `json:"skipped,omitempty"`
}

// Listeners is the WebRTC listen-in measurement.
type Listeners struct {
	Calls             int     `json:"calls"`
	Requested         int     `json:"requested"`
	Started           uint64  `json:"started"`
	PacketsPerS       float64 `json:"forwarded_packets_per_s"`
	CPUCores          float64 `json:"cpu_cores"`
	BaseCPUCores      float64 `json:"cpu_cores_without_listeners"`
	CPUPerForwardedUs float64 `json:"cpu_per_forwarded_packet_us"`
	RSSPerListenerKiB float64 `json:"rss_per_listener_kib"`
	Skipped           string  `json:"skipped,omitempty"`
}

// MicroResult is one Go benchmark line.
type MicroResult struct {
	Package     string             `json:"package"`
	Name        string             `json:"name"`
	NsPerOp     float64            `json:"ns_per_op"`
	BytesPerOp  float64            `json:"bytes_per_op"`
	AllocsPerOp float64            `json:"allocs_per_op"`
	Extra       map[string]float64 `json:"extra,omitempty"`
}

// Profile is the top of a CPU profile of callctl in-process.
type Profile struct {
	Scenario string `json:"scenario"`
	File     string `json:"file"`
	Top      string `json:"top"`
}

// Hostile is the hostile phase (issue 10): live calls without a flood,
// under a flood from an allowed source, and under the same flood from a
// refused one.
type Hostile struct {
	Calls       int      `json:"calls"`
	WindowS     float64  `json:"flood_s"`  // how long the flood sends
	LingerS     float64  `json:"linger_s"` // the window goes on this long after it
	FloodSource string   `json:"flood_source"`
	FloodRate   float64  `json:"flood_invites_per_s"`
	GarbageRate float64  `json:"garbage_per_s"`
	Garbage     []string `json:"garbage_kinds"`
	// AloneP99Us is the generator's own p99 at this many calls (loopback).
	AloneP99Us float64      `json:"generator_alone_p99_us"`
	Runs       []HostileRun `json:"runs"`
}

// HostileRun is one run of the hostile phase, on a fresh callctl.
type HostileRun struct {
	Name    string   `json:"name"`
	Allow   []string `json:"sip_allow"`
	Crashed string   `json:"crashed,omitempty"` // callctl did not survive the run

	CallsFailed uint64            `json:"live_calls_failed"`
	FailedBy    map[string]uint64 `json:"failed_by,omitempty"`
	Sent        uint64            `json:"rtp_sent"`
	Lost        uint64            `json:"rtp_lost"`
	LossPct     float64           `json:"loss_pct"` // over the whole run of the calls

	// The window: the flood's time and hostileLinger after it.
	WindowS       float64 `json:"window_s"`
	LatencyP50Us  float64 `json:"latency_p50_us"`
	LatencyP99Us  float64 `json:"latency_p99_us"`
	LatencyP999Us float64 `json:"latency_p999_us"`
	LatencyMaxUs  float64 `json:"latency_max_us"`
	AddedP99Us    float64 `json:"added_p99_us"` // p99 minus the generator alone
	CPUCores      float64 `json:"cpu_cores"`
	RSSStartKiB   uint64  `json:"rss_start_kib"`
	RSSPeakKiB    uint64  `json:"rss_peak_kib"` // VmHWM at the end of the window
	RSSEndKiB     uint64  `json:"rss_end_kib"`
	RSSGrowthKiB  int64   `json:"rss_growth_kib"` // peak minus start
	LogBytes      uint64  `json:"log_bytes"`
	LogBytesPerS  float64 `json:"log_bytes_per_s"`
	KernelDrops   uint64  `json:"kernel_drops_at_callctl"`

	Flood *loadgen.FloodResult `json:"flood,omitempty"`
	// SIPCounters is how much each callctl_sip_* sample of /metrics moved
	// over the window (refused, dropped, responses by code: whatever the
	// build exports).
	SIPCounters map[string]float64 `json:"sip_counters,omitempty"`
}
