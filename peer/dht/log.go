package dht

import (
	"context"
	"log/slog"
	"strings"

	alog "github.com/anacrolix/log"
)

// libLogger passes the library's warnings and errors to l; its debug and info chatter is
// dropped.
func libLogger(l *slog.Logger) alog.Logger {
	lg := alog.NewLogger("dht")
	lg.Handlers = []alog.Handler{slogHandler{l}}
	return lg.WithFilterLevel(alog.Warning)
}

type slogHandler struct{ l *slog.Logger }

func (h slogHandler) Handle(r alog.Record) {
	level := slog.LevelWarn
	if !r.Level.LessThan(alog.Error) {
		level = slog.LevelError
	}
	h.l.Log(context.Background(), level, "DHT: "+strings.TrimSpace(r.Msg.String()))
}
