package api

import (
	"net/http"

	"github.com/fieldwatch/fieldwatch/cloud/internal/apitoken"
	"github.com/fieldwatch/fieldwatch/cloud/internal/rollout"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// WithRollouts enables /api/v1/rollouts (docs/fleet.md#rollouts).
func (a *API) WithRollouts(e *rollout.Engine) *API {
	a.rollouts = e
	return a
}

// WithoutRollouts says why this cloud offers no rollouts: the 501's
// message.
func (a *API) WithoutRollouts(why string) *API {
	a.noRollouts = why
	return a
}

func (a *API) registerRollouts(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/rollouts", a.wrap("rollouts", a.listRollouts))
	mux.HandleFunc("GET /api/v1/rollouts/{id}", a.wrap("rollout", a.getRollout))
	mux.HandleFunc("POST /api/v1/rollouts", a.guard("rollout_create", apitoken.Operator, a.createRollout))
	mux.HandleFunc("PUT /api/v1/rollouts/{id}/gateways/{gw}/{which}", a.guard("rollout_upload", apitoken.Operator, a.uploadRollout))
	for _, action := range []string{"start", "pause", "resume", "rollback", "cancel"} {
		mux.HandleFunc("POST /api/v1/rollouts/{id}/"+action, a.guard("rollout_"+action, apitoken.Operator,
			func(r *http.Request) (any, error) { return a.rolloutAction(r, action) }))
	}
}

// engine returns the rollout engine, or the 501 a cloud without one answers.
func (a *API) engine() (*rollout.Engine, error) {
	if a.rollouts == nil {
		msg := "rollouts are not available on this cloud"
		if a.noRollouts != "" {
			msg += ": " + a.noRollouts
		}
		return nil, &Error{Status: http.StatusNotImplemented, Msg: msg}
	}
	return a.rollouts, nil
}

// rolloutError turns the engine's refusals into API errors.
func rolloutError(err error) error {
	re, ok := rollout.IsRefusal(err)
	if !ok {
		return err
	}
	switch re.Reason {
	case rollout.NotFound:
		return &Error{Status: http.StatusNotFound, Msg: re.Msg}
	case rollout.Conflict:
		return &Error{Status: http.StatusConflict, Msg: re.Msg}
	}
	return &Error{Status: http.StatusBadRequest, Msg: re.Msg}
}

// by names the caller in the rollout's events and the audit lines.
func by(r *http.Request) string {
	if n := caller(r).Name; n != "" {
		return n
	}
	return "anonymous"
}

// RolloutList answers GET /api/v1/rollouts.
type RolloutList struct {
	Rollouts []rollout.Summary `json:"rollouts"`
}

func (a *API) listRollouts(*http.Request) (any, error) {
	e, err := a.engine()
	if err != nil {
		return nil, err
	}
	return RolloutList{Rollouts: e.List()}, nil
}

func (a *API) getRollout(r *http.Request) (any, error) {
	e, err := a.engine()
	if err != nil {
		return nil, err
	}
	ro, ok := e.Get(r.PathValue("id"))
	if !ok {
		return nil, &Error{Status: http.StatusNotFound, Msg: "no rollout " + r.PathValue("id")}
	}
	return ro, nil
}

// createRollout plans a rollout as a draft: its signed items are uploaded
// next, one request each (a request is bounded by http.max_body_bytes),
// then it is started.
func (a *API) createRollout(r *http.Request) (any, error) {
	e, err := a.engine()
	if err != nil {
		return nil, err
	}
	var spec rollout.Spec
	if err := decodeBody(r, &spec); err != nil {
		e.CountMalformed()
		return nil, err
	}
	ro, err := e.Create(spec, by(r))
	if err != nil {
		return nil, rolloutError(err)
	}
	return ro, nil
}

func (a *API) uploadRollout(r *http.Request) (any, error) {
	e, err := a.engine()
	if err != nil {
		return nil, err
	}
	gw := r.PathValue("gw")
	if err := telemetry.CheckName("gateway", gw); err != nil {
		return nil, badParam("gw", "%v", err)
	}
	body, err := readBody(r, max(telemetry.MaxConfigEnvelopeBytes, telemetry.MaxReleaseBytes))
	if err != nil {
		e.CountMalformed()
		return nil, err
	}
	g, err := e.Upload(r.PathValue("id"), gw, r.PathValue("which"), body, by(r))
	if err != nil {
		return nil, rolloutError(err)
	}
	return g, nil
}

func (a *API) rolloutAction(r *http.Request, action string) (any, error) {
	e, err := a.engine()
	if err != nil {
		return nil, err
	}
	do := map[string]func(id, by string) (*rollout.Rollout, error){"start": e.Start, "pause": e.Pause,
		"resume": e.Resume, "rollback": e.Rollback, "cancel": e.Cancel}[action]
	ro, err := do(r.PathValue("id"), by(r))
	if err != nil {
		return nil, rolloutError(err)
	}
	return ro, nil
}
