package sip

import (
	"context"
	"log/slog"
	"sync"

	gosip "github.com/emiago/sipgo/sip"

	"go.uber.org/zap"
)

// zapSlogHandler sends sipgo's slog output to zap. sipgo's own debug chatter
// is dropped; its warnings and errors are kept.
type zapSlogHandler struct{ log *zap.Logger }

func (h zapSlogHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h zapSlogHandler) Handle(_ context.Context, r slog.Record) error {
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
	return zapSlogHandler{h.log.With(fields...)}
}

func (h zapSlogHandler) WithGroup(name string) slog.Handler {
	return zapSlogHandler{h.log.Named(name)}
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
	return zapSlogHandler{zap.L().Named("sipgo")}.Handle(ctx, r)
}
func (h globalZapHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h globalZapHandler) WithGroup(string) slog.Handler      { return h }
