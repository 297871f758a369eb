package newest

import "testing"

func TestNewestWins(t *testing.T) {
	b := New()
	for _, p := range []string{"1", "2", "3"} {
		b.Put([]byte(p))
	}
	if got := string(<-b.C()); got != "3" {
		t.Fatalf("took %q, want the newest, 3", got)
	}
	select {
	case p := <-b.C():
		t.Fatalf("a second message %q was kept", p)
	default:
	}
}
