package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/alert"
	"github.com/fieldwatch/fieldwatch/cloud/internal/alert/engine"
	"github.com/fieldwatch/fieldwatch/cloud/internal/apitoken"
)

// maxBody bounds a POSTed JSON document.
const maxBody = 64 << 10

// WithAlerts serves the early-warning endpoints from e.
func (a *API) WithAlerts(e *engine.Engine) *API {
	a.alerts = e
	return a
}

func (a *API) registerAlerts(mux *http.ServeMux) {
	if a.alerts == nil {
		return
	}
	mux.HandleFunc("GET /api/v1/alerts", a.wrap("alerts", a.listAlerts))
	mux.HandleFunc("GET /api/v1/alerts/history", a.wrap("alert_history", a.alertHistory))
	mux.HandleFunc("GET /api/v1/alerts/{fp}", a.wrap("alert", a.oneAlert))
	mux.HandleFunc("POST /api/v1/alerts/{fp}/ack", a.guard("alert_ack", apitoken.Operator, a.ackAlert))
	mux.HandleFunc("GET /api/v1/silences", a.wrap("silences", a.listSilences))
	mux.HandleFunc("POST /api/v1/silences", a.guard("silence_create", apitoken.Operator, a.createSilence))
	mux.HandleFunc("DELETE /api/v1/silences/{id}", a.guard("silence_expire", apitoken.Operator, a.expireSilence))
}

func (a *API) listAlerts(r *http.Request) (any, error) {
	q := r.URL.Query()
	if err := onlyParams(q, "state", "severity", "station", "site", "rule"); err != nil {
		return nil, err
	}
	f := engine.Filter{State: q.Get("state"), Gateway: q.Get("station"), Site: q.Get("site"), Rule: q.Get("rule")}
	switch f.State {
	case "", "active", "pending", "firing", "resolved", "all":
	default:
		return nil, badParam("state", "%q is not active, pending, firing, resolved or all", f.State)
	}
	if v := q.Get("severity"); v != "" {
		s, err := alert.ParseSeverity(v)
		if err != nil {
			return nil, badParam("severity", "%v", err)
		}
		f.MinSeverity = s
	}
	out := a.alerts.Alerts(f)
	if out == nil {
		out = []alert.Alert{}
	}
	return out, nil
}

func (a *API) oneAlert(r *http.Request) (any, error) {
	al, err := a.alerts.Alert(r.PathValue("fp"))
	if errors.Is(err, engine.ErrNotFound) {
		return nil, &Error{Status: http.StatusNotFound, Param: "fp", Msg: "no such alert"}
	}
	return al, err
}

// AckRequest acknowledges an alert.
type AckRequest struct {
	By      string `json:"by"`
	Comment string `json:"comment"`
}

func (a *API) ackAlert(r *http.Request) (any, error) {
	var req AckRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	by, err := author(r, "by", req.By)
	if err != nil {
		return nil, err
	}
	al, err := a.alerts.Ack(r.Context(), r.PathValue("fp"), by, req.Comment)
	if err == nil {
		a.log.Info("alert acknowledged", "fingerprint", al.Fingerprint, "by", by, "comment", req.Comment)
	}
	switch {
	case errors.Is(err, engine.ErrNotFound):
		return nil, &Error{Status: http.StatusNotFound, Param: "fp", Msg: "no such alert"}
	case errors.Is(err, engine.ErrNotFiring):
		return nil, &Error{Status: http.StatusConflict, Msg: err.Error()}
	}
	return al, err
}

func (a *API) alertHistory(r *http.Request) (any, error) {
	q := r.URL.Query()
	if err := onlyParams(q, "station", "fingerprint", "from", "to", "limit"); err != nil {
		return nil, err
	}
	now := a.now()
	from, err := parseTime(q.Get("from"), now.Add(-7*24*time.Hour), now)
	if err != nil {
		return nil, badParam("from", "%v", err)
	}
	to, err := parseTime(q.Get("to"), now.Add(time.Hour), now)
	if err != nil {
		return nil, badParam("to", "%v", err)
	}
	limit := 200
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 1000 {
			return nil, badParam("limit", "%q is not a number in 1..1000", v)
		}
	}
	return a.alerts.History(r.Context(), engine.HistoryQuery{Gateway: q.Get("station"), Fingerprint: q.Get("fingerprint"),
		From: from, To: to, Limit: limit})
}

func (a *API) listSilences(r *http.Request) (any, error) {
	q := r.URL.Query()
	if err := onlyParams(q, "all"); err != nil {
		return nil, err
	}
	var all bool
	switch v := q.Get("all"); v {
	case "", "0", "false":
	case "1", "true":
		all = true
	default:
		return nil, badParam("all", "%q is not true or false", v)
	}
	out := a.alerts.Silences(all)
	if out == nil {
		out = []alert.Silence{}
	}
	return out, nil
}

func (a *API) createSilence(r *http.Request) (any, error) {
	var s alert.Silence
	if err := decodeBody(r, &s); err != nil {
		return nil, err
	}
	if s.StartsAt.IsZero() {
		s.StartsAt = a.now()
	}
	by, err := author(r, "created_by", s.CreatedBy)
	if err != nil {
		return nil, err
	}
	s.CreatedBy = by
	if err := s.Check(); err != nil {
		return nil, &Error{Status: http.StatusBadRequest, Msg: err.Error()}
	}
	out, err := a.alerts.AddSilence(r.Context(), s)
	if err == nil {
		a.log.Info("silence created", "id", out.ID, "by", by, "ends_at", s.EndsAt, "comment", s.Comment)
	}
	return out, err
}

func (a *API) expireSilence(r *http.Request) (any, error) {
	err := a.alerts.ExpireSilence(r.Context(), r.PathValue("id"))
	if errors.Is(err, engine.ErrNotFound) {
		return nil, &Error{Status: http.StatusNotFound, Param: "id", Msg: "no such silence"}
	}
	if err != nil {
		return nil, err
	}
	a.log.Info("silence expired", "id", r.PathValue("id"), "by", caller(r).Name)
	return map[string]string{"expired": r.PathValue("id")}, nil
}

// decodeBody reads a JSON body strictly: unknown fields and trailing data
// are refused, and a body over maxBody (or over the server's own cap,
// httpserver.Guard) is 413.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return &Error{Status: http.StatusRequestEntityTooLarge, Msg: fmt.Sprintf("body: larger than %d bytes", mb.Limit)}
		}
		return &Error{Status: http.StatusBadRequest, Msg: fmt.Sprintf("body: %v", err)}
	}
	if dec.More() {
		return &Error{Status: http.StatusBadRequest, Msg: "body: more than one JSON document"}
	}
	return nil
}
