package api

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/callctl/callctl/internal/auth"
	"github.com/callctl/callctl/internal/session"
)

// metrics is a small Prometheus text-format exposition (format 0.0.4):
// counters the API owns, and gauges computed from the registry at scrape.
type metrics struct {
	mu         sync.Mutex
	operations map[[2]string]uint64 // {operation, result}
	latency    map[string]*histogram
}

var latencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

type histogram struct {
	counts []uint64 // per bucket, cumulative at exposition
	sum    float64
	n      uint64
}

func newMetrics() *metrics {
	return &metrics{operations: map[[2]string]uint64{}, latency: map[string]*histogram{}}
}

func (m *metrics) operation(name string, ok bool) {
	result := "ok"
	if !ok {
		result = "error"
	}
	m.mu.Lock()
	m.operations[[2]string{name, result}]++
	m.mu.Unlock()
}

// wrap times every request by its route pattern.
func (m *metrics) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h.ServeHTTP(w, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		d := time.Since(start).Seconds()
		m.mu.Lock()
		hg := m.latency[route]
		if hg == nil {
			hg = &histogram{counts: make([]uint64, len(latencyBuckets))}
			m.latency[route] = hg
		}
		for i, b := range latencyBuckets {
			if d <= b {
				hg.counts[i]++
				break
			}
		}
		hg.sum += d
		hg.n++
		m.mu.Unlock()
	})
}

// writeLabelled writes one counter family with one label, in label order.
func writeLabelled(b *strings.Builder, name, help, label string, values map[string]uint64) {
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s counter\n", name, help, name)
	for _, k := range keys {
		fmt.Fprintf(b, "%s{%s=%q} %d\n", name, label, k, values[k])
	}
}

func (s *Server) getMetrics(w http.ResponseWriter, r *http.Request, c *auth.Client) *httpError {
	var b strings.Builder
	byState := map[session.State]int{}
	var pktIn, pktOut, bytesIn, bytesOut, lost uint64
	for _, snap := range s.reg.List() {
		byState[snap.State]++
		if snap.State.Ended() {
			continue
		}
		for _, l := range snap.Legs {
			pktIn += l.PacketsIn
			pktOut += l.PacketsOut
			bytesIn += l.BytesIn
			bytesOut += l.BytesOut
			lost += l.Lost
		}
	}
	b.WriteString("# HELP callctl_sessions Sessions by state (live, and ended ones still retained).\n# TYPE callctl_sessions gauge\n")
	for _, st := range session.AllStates {
		fmt.Fprintf(&b, "callctl_sessions{state=%q} %d\n", st, byState[st])
	}
	b.WriteString("# HELP callctl_live_sessions Sessions not yet ended.\n# TYPE callctl_live_sessions gauge\n")
	fmt.Fprintf(&b, "callctl_live_sessions %d\n", s.reg.LiveCount())
	b.WriteString("# HELP callctl_rtp_packets RTP packets relayed on live calls, by direction as seen by callctl.\n# TYPE callctl_rtp_packets gauge\n")
	fmt.Fprintf(&b, "callctl_rtp_packets{direction=\"in\"} %d\ncallctl_rtp_packets{direction=\"out\"} %d\n", pktIn, pktOut)
	b.WriteString("# HELP callctl_rtp_bytes RTP bytes on live calls.\n# TYPE callctl_rtp_bytes gauge\n")
	fmt.Fprintf(&b, "callctl_rtp_bytes{direction=\"in\"} %d\ncallctl_rtp_bytes{direction=\"out\"} %d\n", bytesIn, bytesOut)
	b.WriteString("# HELP callctl_rtp_lost RTP packets lost (sequence gaps) on live calls.\n# TYPE callctl_rtp_lost gauge\n")
	fmt.Fprintf(&b, "callctl_rtp_lost %d\n", lost)

	if s.opts.SIPStats != nil {
		stats := s.opts.SIPStats()
		keys := make([]string, 0, len(stats))
		for k := range stats {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b.WriteString("# HELP callctl_sip_responses_total SIP responses by direction and status code.\n# TYPE callctl_sip_responses_total counter\n")
		for _, k := range keys {
			dir, code, _ := strings.Cut(k, ":")
			fmt.Fprintf(&b, "callctl_sip_responses_total{direction=%q,code=%q} %d\n", dir, code, stats[k])
		}
	}

	if s.opts.SIPRefused != nil {
		b.WriteString("# HELP callctl_sip_refused_total SIP requests refused because their source is not on sip.allow.\n# TYPE callctl_sip_refused_total counter\n")
		fmt.Fprintf(&b, "callctl_sip_refused_total %d\n", s.opts.SIPRefused())
	}
	if s.opts.SIPDropped != nil {
		writeLabelled(&b, "callctl_sip_dropped_total", "SIP messages dropped unanswered before any transaction, by reason.", "reason", s.opts.SIPDropped())
	}
	if s.opts.SIPSendFailures != nil {
		writeLabelled(&b, "callctl_sip_send_failures_total", "SIP messages callctl could not send, by reason (each failed its transaction).", "reason", s.opts.SIPSendFailures())
	}
	if s.opts.SIPLargeMessages != nil {
		writeLabelled(&b, "callctl_sip_large_requests_total", "SIP requests over UDP's 1,300 bytes (RFC 3261 18.1.1) callctl sent, by the transport they went on.", "transport", s.opts.SIPLargeMessages())
	}
	if s.opts.SIPPanics != nil {
		b.WriteString("# HELP callctl_sip_panics_total SIP handler panics recovered (each answered 500).\n# TYPE callctl_sip_panics_total counter\n")
		fmt.Fprintf(&b, "callctl_sip_panics_total %d\n", s.opts.SIPPanics())
	}

	if s.opts.MediaForeign != nil {
		b.WriteString("# HELP callctl_media_foreign_dropped_total RTP and RTCP packets dropped because their source was not the party that signalled the media (media.latching).\n# TYPE callctl_media_foreign_dropped_total counter\n")
		fmt.Fprintf(&b, "callctl_media_foreign_dropped_total %d\n", s.opts.MediaForeign())
	}
	if s.opts.SRTPDropped != nil {
		b.WriteString("# HELP callctl_media_srtp_dropped_total SRTP and SRTCP packets dropped because they failed authentication or replay protection.\n# TYPE callctl_media_srtp_dropped_total counter\n")
		fmt.Fprintf(&b, "callctl_media_srtp_dropped_total %d\n", s.opts.SRTPDropped())
	}

	if s.opts.StoreWrites != nil {
		writeLabelled(&b, "callctl_store_writes_total", "Writes of call records to the live-call store (cluster.store), by result: ok, failed (retried), conflict (the record changed under this node).", "result", s.opts.StoreWrites())
	}
	if s.opts.ConfigReloads != nil {
		writeLabelled(&b, "callctl_config_reloads_total", "Configuration reloads (SIGHUP, POST /api/v1/config/reload), by result: ok, or refused (nothing changed).", "result", s.opts.ConfigReloads())
	}

	b.WriteString("# HELP callctl_api_panics_total API handler panics recovered (HTTP or WebSocket; each answered 500 when it still could be).\n# TYPE callctl_api_panics_total counter\n")
	fmt.Fprintf(&b, "callctl_api_panics_total %d\n", s.panics.n.Load())

	m := s.metrics
	m.mu.Lock()
	b.WriteString("# HELP callctl_operations_total Session operations requested over the API, by result.\n# TYPE callctl_operations_total counter\n")
	opKeys := make([][2]string, 0, len(m.operations))
	for k := range m.operations {
		opKeys = append(opKeys, k)
	}
	slices.SortFunc(opKeys, func(a, b [2]string) int { return strings.Compare(a[0]+a[1], b[0]+b[1]) })
	for _, k := range opKeys {
		fmt.Fprintf(&b, "callctl_operations_total{operation=%q,result=%q} %d\n", k[0], k[1], m.operations[k])
	}
	b.WriteString("# HELP callctl_api_request_duration_seconds API request latency by route.\n# TYPE callctl_api_request_duration_seconds histogram\n")
	routes := make([]string, 0, len(m.latency))
	for k := range m.latency {
		routes = append(routes, k)
	}
	slices.Sort(routes)
	for _, route := range routes {
		hg := m.latency[route]
		var cum uint64
		for i, le := range latencyBuckets {
			cum += hg.counts[i]
			fmt.Fprintf(&b, "callctl_api_request_duration_seconds_bucket{route=%q,le=\"%g\"} %d\n", route, le, cum)
		}
		fmt.Fprintf(&b, "callctl_api_request_duration_seconds_bucket{route=%q,le=\"+Inf\"} %d\n", route, hg.n)
		fmt.Fprintf(&b, "callctl_api_request_duration_seconds_sum{route=%q} %g\n", route, hg.sum)
		fmt.Fprintf(&b, "callctl_api_request_duration_seconds_count{route=%q} %d\n", route, hg.n)
	}
	m.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	_, _ = w.Write([]byte(b.String()))
	return nil
}
