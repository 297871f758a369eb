package broker

import (
	"context"
	"log/slog"
)

// quietPackets wraps the logger handed to Mochi, which logs whole packets
// ("pk", "packet") on some errors: a CONNECT packet carries a password.
type quietPackets struct{ slog.Handler }

func (h quietPackets) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "pk" || a.Key == "packet" {
			a = slog.String(a.Key, "(omitted)")
		}
		out.AddAttrs(a)
		return true
	})
	return h.Handler.Handle(ctx, out)
}

func (h quietPackets) WithAttrs(as []slog.Attr) slog.Handler {
	return quietPackets{h.Handler.WithAttrs(as)}
}

func (h quietPackets) WithGroup(name string) slog.Handler {
	return quietPackets{h.Handler.WithGroup(name)}
}
