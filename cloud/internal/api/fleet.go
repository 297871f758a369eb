package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/fieldwatch/fieldwatch/cloud/internal/apitoken"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// ConfigPublisher publishes a gateway's signed desired configuration,
// retained on its config topic (ingest.Ingestor.PublishConfig).
type ConfigPublisher func(gateway string, envelope []byte) error

// ErrConfigUnsupported is what a ConfigPublisher returns when this cloud
// cannot carry remote configuration (answered 501).
var ErrConfigUnsupported = errors.New("remote configuration is not supported by this cloud's link")

// WithConfigPublisher enables PUT /api/v1/stations/{id}/config.
func (a *API) WithConfigPublisher(p ConfigPublisher) *API {
	a.publishConfig = p
	return a
}

func (a *API) registerFleet(mux *http.ServeMux) {
	mux.HandleFunc("PUT /api/v1/stations/{id}/config", a.guard("station_config", apitoken.Operator, a.putConfig))
}

// putConfig takes a signed config envelope (fieldwatch-cloud fleet push)
// and publishes it for its gateway. The cloud checks its form and address,
// not its signature: it holds no key, and the gateway trusts only its own.
func (a *API) putConfig(r *http.Request) (any, error) {
	if a.publishConfig == nil {
		return nil, &Error{Status: http.StatusNotImplemented, Msg: "remote configuration is not available on this cloud"}
	}
	id := r.PathValue("id")
	if err := telemetry.CheckName("gateway", id); err != nil {
		return nil, badParam("id", "%v", err)
	}
	body, err := readBody(r, telemetry.MaxConfigEnvelopeBytes)
	if err != nil {
		return nil, err
	}
	env, err := telemetry.DecodeConfig(body)
	if err != nil {
		return nil, &Error{Status: http.StatusBadRequest, Msg: "body: " + err.Error()}
	}
	if env.Gateway != id {
		return nil, badParam("id", "the envelope is addressed to %q", env.Gateway)
	}
	if err := a.publishConfig(id, body); err != nil {
		if errors.Is(err, ErrConfigUnsupported) {
			return nil, &Error{Status: http.StatusNotImplemented, Msg: err.Error()}
		}
		return nil, &Error{Status: http.StatusServiceUnavailable, Msg: "cannot publish: " + err.Error()}
	}
	a.log.Info("desired config published", "gateway", id, "version", env.Version, "key", env.Key, "by", caller(r).Name)
	return ConfigPublished{Gateway: id, Version: env.Version, Topic: telemetry.ConfigTopic(id)}, nil
}

// readBody reads r's body of at most limit bytes: 413 when it is larger,
// 400 when it cannot be read.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, &Error{Status: http.StatusRequestEntityTooLarge, Msg: fmt.Sprintf("body: larger than %d bytes", mb.Limit)}
		}
		return nil, &Error{Status: http.StatusBadRequest, Msg: fmt.Sprintf("body: %v", err)}
	}
	return body, nil
}

// ConfigPublished answers PUT /api/v1/stations/{id}/config.
type ConfigPublished struct {
	Gateway string `json:"gateway"`
	Version uint64 `json:"version"`
	Topic   string `json:"topic"`
}
