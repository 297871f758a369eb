package desired

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

func TestStoreKeepsTheNewestPerGatewayAndKind(t *testing.T) {
	path := filepath.Join(t.TempDir(), "desired.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	for _, it := range []Item{
		{Config, "river-02", []byte("v1"), t0},
		{Config, "river-01", []byte("v1"), t0},
		{Release, "river-01", []byte("serial 4"), t0.Add(time.Minute)},
		{Config, "river-01", []byte("v2"), t0.Add(2 * time.Minute)},
	} {
		if err := s.Put(it); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	// Reopened, as after a restart.
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.All()
	if err != nil {
		t.Fatal(err)
	}
	want := []Item{
		{Config, "river-01", []byte("v2"), t0.Add(2 * time.Minute)},
		{Release, "river-01", []byte("serial 4"), t0.Add(time.Minute)},
		{Config, "river-02", []byte("v1"), t0},
	}
	if !slices.EqualFunc(got, want, func(a, b Item) bool {
		return a.Kind == b.Kind && a.Gateway == b.Gateway && string(a.Data) == string(b.Data) && a.Published.Equal(b.Published)
	}) {
		t.Fatalf("All() = %+v, want %+v", got, want)
	}
}

func TestPutRefusesIncompleteItems(t *testing.T) {
	s, err := Open("")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, it := range []Item{
		{Kind: "firmware", Gateway: "gw", Data: []byte("x")},
		{Kind: Config, Data: []byte("x")},
		{Kind: Release, Gateway: "gw"},
	} {
		if err := s.Put(it); err == nil {
			t.Errorf("Put(%+v) took it", it)
		}
	}
	if items, _ := s.All(); len(items) != 0 {
		t.Errorf("kept %d items", len(items))
	}
}

func TestRepublishWaitsForTheLinkAndSkipsFailures(t *testing.T) {
	s, err := Open("")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, gw := range []string{"a", "b", "c"} {
		if err := s.Put(Item{Kind: Config, Gateway: gw, Data: []byte("env " + gw), Published: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	// The link comes up at the third question; nothing may be published
	// before.
	var asked, up atomic.Int32
	ready := func() bool {
		if asked.Add(1) < 3 {
			return false
		}
		up.Store(1)
		return true
	}
	var published []string
	publish := func(_ context.Context, it Item) error {
		if up.Load() == 0 {
			t.Errorf("%s published before the link was up", it.Gateway)
		}
		if it.Gateway == "b" {
			return errors.New("the broker did not take the message")
		}
		published = append(published, it.Gateway+":"+string(it.Data))
		return nil
	}
	n, err := Republish(context.Background(), s, ready, time.Millisecond, publish, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil || n != 2 {
		t.Fatalf("Republish = %d, %v; want 2, nil", n, err)
	}
	if want := []string{"a:env a", "c:env c"}; !slices.Equal(published, want) {
		t.Fatalf("published %q, want %q", published, want)
	}
}

func TestRepublishEndsWithItsContext(t *testing.T) {
	s, err := Open("")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Put(Item{Kind: Config, Gateway: "a", Data: []byte("x"), Published: time.Now()}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	never := func() bool { cancel(); return false }
	n, err := Republish(ctx, s, never, time.Hour, func(context.Context, Item) error {
		t.Error("published without a link")
		return nil
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if n != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("Republish = %d, %v; want 0, context.Canceled", n, err)
	}
}
