package sip

import (
	"context"
	"log/slog"
	"sync"

	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/callctl/callctl/internal/logging"
)

// zapSlogHandler sends sipgo's slog output to zap. sipgo's own debug chatter
// is dropped; its warnings and errors are kept, except those that a peer
// can cause once per message (a message it cannot parse, a connection
// refused by the read filter): those go to the summary, without the bytes
// sipgo would have logged.
type zapSlogHandler struct {
	log     *zap.Logger
	summary *logging.Summary
}

// hostileLines are sipgo's log messages that a peer can cause at will.
var hostileLines = map[string]string{
	"failed to parse":   "unparsable",
	"Read filter error": "refused",
}

func (h zapSlogHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h zapSlogHandler) Handle(_ context.Context, r slog.Record) error {
	if kind, ok := hostileLines[r.Message]; ok {
		if h.summary != nil {
			h.summary.Note("sipgo: "+kind, "stream")
		}
		return nil
	}
	fields := make([]zap.Field, 0, r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool {
		fields = append(fields, zap.Any(a.Key, a.Value.Any()))
		return true
	})
	if r.Level >= slog.LevelError {
		h.log.Error(r.Message, fields...)
	} else {
		h.log.Warn(r.Message, fields...)
	}
	return nil
}

func (h zapSlogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	fields := make([]zap.Field, 0, len(attrs))
	for _, a := range attrs {
		fields = append(fields, zap.Any(a.Key, a.Value.Any()))
	}
	return zapSlogHandler{log: h.log.With(fields...), summary: h.summary}
}

func (h zapSlogHandler) WithGroup(name string) slog.Handler {
	return zapSlogHandler{log: h.log.Named(name), summary: h.summary}
}

var fallbackOnce sync.Once

// setSipgoFallbackLogger points sipgo's package-wide logger (used where no
// per-agent logger reaches) at zap's global logger, looked up per line so
// that cmd/callctl's zap.ReplaceGlobals applies. It is set once: sipgo reads
// it unsynchronised.
func setSipgoFallbackLogger() {
	fallbackOnce.Do(func() { gosip.SetDefaultLogger(slog.New(globalZapHandler{})) })
}

// globalZapHandler forwards to whatever zap.L() is when a line is logged.
type globalZapHandler struct{}

func (globalZapHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (globalZapHandler) Handle(ctx context.Context, r slog.Record) error {
	return zapSlogHandler{log: zap.L().Named("sipgo")}.Handle(ctx, r)
}
func (h globalZapHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h globalZapHandler) WithGroup(string) slog.Handler      { return h }
