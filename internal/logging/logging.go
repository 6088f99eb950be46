package logging

import (
	"fmt"
	"os"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Field names shared by every package that logs about calls.
const (
	// SessionKey holds the callctl session id.
	SessionKey = "session"
	// CallIDKey holds the SIP Call-ID of one leg.
	CallIDKey = "call_id"
)

// Levels and Formats are the values New accepts.
var (
	Levels  = []string{"debug", "info", "warn", "error"}
	Formats = []string{"console", "json"}
)

// New returns a logger writing to standard error at level ("debug", "info",
// "warn" or "error") in format ("console" for people, "json" for
// collectors). It returns an error naming the bad argument otherwise.
func New(level, format string) (*zap.Logger, error) {
	return newLogger(level, format, zapcore.Lock(os.Stderr))
}

// newLogger is New with the output chosen, for tests.
func newLogger(level, format string, out zapcore.WriteSyncer) (*zap.Logger, error) {
	var lvl zapcore.Level
	switch level {
	case "debug":
		lvl = zapcore.DebugLevel
	case "info":
		lvl = zapcore.InfoLevel
	case "warn":
		lvl = zapcore.WarnLevel
	case "error":
		lvl = zapcore.ErrorLevel
	default:
		return nil, fmt.Errorf("logging: level %q is not one of %s", level, strings.Join(Levels, ", "))
	}

	ec := zap.NewProductionEncoderConfig()
	ec.TimeKey = "time"
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	ec.EncodeDuration = zapcore.StringDurationEncoder
	var enc zapcore.Encoder
	switch format {
	case "json":
		enc = zapcore.NewJSONEncoder(ec)
	case "console":
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	default:
		return nil, fmt.Errorf("logging: format %q is not one of %s", format, strings.Join(Formats, ", "))
	}

	// No sampling: a call's lines must all be there when someone follows it.
	core := zapcore.NewCore(enc, out, lvl)
	return zap.New(core, zap.AddCaller(), zap.AddStacktrace(zapcore.DPanicLevel), zap.ErrorOutput(out)), nil
}

// Session is the field naming the session a line is about.
func Session(id string) zap.Field { return zap.String(SessionKey, id) }

// CallID is the field naming the SIP Call-ID of the leg a line is about.
func CallID(id string) zap.Field { return zap.String(CallIDKey, id) }
