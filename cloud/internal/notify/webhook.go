package notify

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fieldwatch/fieldwatch/internal/version"
)

// Event is the JSON object of one alert state change: the generic webhook's
// body and the MQTT payload. Key is the idempotency key,
// fingerprint:status:level:seq (with ":r<n>" on the n-th group message when
// it is a repeat).
type Event struct {
	Key          string            `json:"key"`
	Fingerprint  string            `json:"fingerprint"`
	Status       string            `json:"status"`
	Severity     string            `json:"severity"`
	Level        int               `json:"level"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Acknowledged bool              `json:"acknowledged"`
	Repeat       bool              `json:"repeat,omitempty"`
}

func eventJSON(a *Alert, key string, repeat bool) []byte {
	level, _ := strconv.Atoi(a.Labels["level"])
	e := Event{Key: key, Fingerprint: a.Fingerprint, Status: a.Status, Severity: a.Labels["severity"], Level: level,
		Labels: cloneMap(a.Labels), Annotations: cloneMap(a.Annotations), StartsAt: a.StartsAt.UTC(),
		GeneratorURL: a.GeneratorURL, Acknowledged: a.Acknowledged, Repeat: repeat}
	if a.Status == StatusResolved {
		e.EndsAt = a.EndsAt.UTC()
	}
	return []byte(mustJSON(e))
}

// httpSender POSTs a message body as JSON. A secret adds the signature
// headers.
type httpSender struct {
	client *http.Client
	url    string
	secret []byte
	now    func() time.Time
}

// IdempotencyHeader carries every HTTP notification's idempotency key.
const IdempotencyHeader = "Idempotency-Key"

func (s *httpSender) send(ctx context.Context, m *message) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(m.payload))
	if err != nil {
		return &permanentError{dropInvalid, err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "fieldwatch/"+version.Version)
	req.Header.Set(IdempotencyHeader, m.key)
	if s.secret != nil {
		ts := strconv.FormatInt(s.now().Unix(), 10)
		req.Header.Set(TimestampHeader, ts)
		req.Header.Set(SignatureHeader, Sign(s.secret, ts, m.payload))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	err = fmt.Errorf("%s: HTTP %d: %s", s.url, resp.StatusCode, strings.TrimSpace(string(snippet)))
	if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout &&
		resp.StatusCode != http.StatusTooManyRequests {
		return &permanentError{dropRejected, err}
	}
	return err
}
