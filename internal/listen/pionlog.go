package listen

import (
	"fmt"

	"github.com/pion/logging"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// pionLogs routes pion's logs into zap, scoped. pion's info level narrates
// every state change of every connection: it goes to debug; trace (per
// packet) is dropped.
// Its warnings and errors are mostly a peer that went away; they go to
// debug too, since the listener logs its own end with the reason.
type pionLogs struct{ log *zap.Logger }

func (p pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{log: p.log.With(zap.String("pion", scope))}
}

type pionLogger struct{ log *zap.Logger }

func (l pionLogger) logf(level zapcore.Level, format string, args ...any) {
	if ce := l.log.Check(level, ""); ce != nil {
		ce.Message = fmt.Sprintf(format, args...)
		ce.Write()
	}
}

func (l pionLogger) Trace(string)                      {}
func (l pionLogger) Tracef(string, ...any)             {}
func (l pionLogger) Debug(msg string)                  { l.log.Debug(msg) }
func (l pionLogger) Debugf(format string, args ...any) { l.logf(zapcore.DebugLevel, format, args...) }
func (l pionLogger) Info(msg string)                   { l.log.Debug(msg) }
func (l pionLogger) Infof(format string, args ...any)  { l.logf(zapcore.DebugLevel, format, args...) }
func (l pionLogger) Warn(msg string)                   { l.log.Debug(msg) }
func (l pionLogger) Warnf(format string, args ...any)  { l.logf(zapcore.DebugLevel, format, args...) }
func (l pionLogger) Error(msg string)                  { l.log.Warn(msg) }
func (l pionLogger) Errorf(format string, args ...any) { l.logf(zapcore.WarnLevel, format, args...) }
