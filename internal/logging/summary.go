package logging

import (
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"
)

// A Summary turns events that can come once per packet (traffic refused,
// shed or unparsable) into at most a few log lines per interval: one per
// kind and source, with the count and the first and last time seen, so a
// flood costs a handful of lines, not one per datagram. Only the busiest
// sources of an interval are named; the rest are added up in one line. It
// never logs what the traffic contained. Note is safe for concurrent use.
type Summary struct {
	log      *zap.Logger
	msg      string
	maxLines int

	mu      sync.Mutex
	entries map[summaryKey]*summaryEntry

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

type summaryKey struct{ kind, source string }

type summaryEntry struct {
	count       uint64
	first, last time.Time
}

// NewSummary starts a summary that writes msg at Warn every interval for
// what was noted since the last one, naming at most maxLines sources.
// Close stops it and writes what is pending.
func NewSummary(log *zap.Logger, msg string, interval time.Duration, maxLines int) *Summary {
	if interval <= 0 {
		interval = 10 * time.Second
	}
	if maxLines <= 0 {
		maxLines = 20
	}
	s := &Summary{log: log, msg: msg, maxLines: maxLines, entries: make(map[summaryKey]*summaryEntry),
		stop: make(chan struct{}), done: make(chan struct{})}
	go s.run(interval)
	return s
}

// maxEntries bounds what a summary keeps between two flushes, whatever the
// number of distinct (forged) sources; past it, new sources count as
// "other".
const maxEntries = 4096

// Note records one event of kind from source.
func (s *Summary) Note(kind, source string) {
	now := time.Now()
	s.mu.Lock()
	k := summaryKey{kind, source}
	e := s.entries[k]
	if e == nil {
		if len(s.entries) >= maxEntries {
			k.source = "other"
			e = s.entries[k]
		}
		if e == nil {
			e = &summaryEntry{first: now}
			s.entries[k] = e
		}
	}
	e.count++
	e.last = now
	s.mu.Unlock()
}

func (s *Summary) run(interval time.Duration) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.Flush()
		case <-s.stop:
			s.Flush()
			return
		}
	}
}

// Flush writes what was noted since the last flush now.
func (s *Summary) Flush() {
	s.mu.Lock()
	entries := s.entries
	s.entries = make(map[summaryKey]*summaryEntry)
	s.mu.Unlock()
	if len(entries) == 0 {
		return
	}
	keys := make([]summaryKey, 0, len(entries))
	for k := range entries {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return entries[keys[i]].count > entries[keys[j]].count })
	var rest, restSources uint64
	for i, k := range keys {
		e := entries[k]
		if i >= s.maxLines {
			rest += e.count
			restSources++
			continue
		}
		s.log.Warn(s.msg, zap.String("kind", k.kind), zap.String("source", k.source), zap.Uint64("count", e.count),
			zap.Time("first", e.first), zap.Time("last", e.last))
	}
	if rest > 0 {
		s.log.Warn(s.msg, zap.String("kind", "various"), zap.Uint64("sources", restSources), zap.Uint64("count", rest))
	}
}

// Close stops the summary after writing what is pending. It is safe to
// call more than once.
func (s *Summary) Close() {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
}
