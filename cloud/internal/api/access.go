package api

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldwatch/fieldwatch/cloud/internal/apitoken"
	"github.com/fieldwatch/fieldwatch/internal/secretfile"
)

// access decides who a request is and whether it may do what it asks.
type access struct {
	tokens    atomic.Pointer[apitoken.Set]
	anonymous apitoken.Role
	failures  *prometheus.CounterVec
	reloads   *prometheus.CounterVec
}

// WithAccess makes requests carry a bearer token from tokens, or act with
// the anonymous role. Without it every request has the operator role.
func (a *API) WithAccess(tokens *apitoken.Set, anonymous apitoken.Role) *API {
	a.access.tokens.Store(tokens)
	a.access.anonymous = anonymous
	return a
}

// ReloadTokens replaces the tokens with those of the file at path; a file
// that does not load, or lists none, is refused and the tokens kept.
func (a *API) ReloadTokens(path string) {
	s, err := apitoken.Load(path)
	if err == nil && s.Len() == 0 {
		err = fmt.Errorf("%s lists no tokens", path)
	}
	if err != nil {
		a.access.reloads.WithLabelValues("failure").Inc()
		a.log.Error("token file refused; keeping the tokens in use", "err", err)
		return
	}
	if l, err := secretfile.Check(path); err == nil && l != nil {
		l.Field = "http.tokens_file"
		l.Warn(a.log)
	}
	a.access.tokens.Store(s)
	a.access.reloads.WithLabelValues("success").Inc()
	a.log.Info("token file reloaded", "file", path, "tokens", s.Len())
}

type callerKey struct{}

// caller is who made r; Name is empty for an anonymous request.
func caller(r *http.Request) apitoken.Caller {
	c, _ := r.Context().Value(callerKey{}).(apitoken.Caller)
	return c
}

// authorize returns r carrying its caller, or the error refusing it: 401
// for a missing, malformed or unknown token, 403 for a role too low.
func (ac *access) authorize(r *http.Request, need apitoken.Role) (*http.Request, *Error) {
	c := apitoken.Caller{Role: ac.anonymous}
	if h := r.Header.Get("Authorization"); h != "" {
		secret, ok := apitoken.FromHeader(h)
		if !ok {
			ac.failures.WithLabelValues("malformed").Inc()
			return nil, &Error{Status: http.StatusUnauthorized, Param: "Authorization",
				Msg: "Authorization: expected \"Bearer <token>\""}
		}
		if c, ok = ac.tokens.Load().Lookup(secret); !ok {
			ac.failures.WithLabelValues("unknown_token").Inc()
			return nil, &Error{Status: http.StatusUnauthorized, Param: "Authorization",
				Msg: "Authorization: unknown token; `fieldwatch-cloud token` makes one"}
		}
	}
	if c.Role < need {
		if c.Name == "" {
			ac.failures.WithLabelValues("no_token").Inc()
			return nil, &Error{Status: http.StatusUnauthorized, Param: "Authorization",
				Msg: "this needs a token with the " + need.String() + " role (Authorization: Bearer <token>); see docs/api.md"}
		}
		ac.failures.WithLabelValues("role").Inc()
		return nil, &Error{Status: http.StatusForbidden,
			Msg: "token " + c.Name + " has the " + c.Role.String() + " role; this needs " + need.String()}
	}
	return r.WithContext(context.WithValue(r.Context(), callerKey{}, c)), nil
}

// author is who an action is recorded under: the token's name, or for an
// anonymous request the name given in field (required then). A name that
// differs from the token's is refused, not overwritten.
func author(r *http.Request, field, given string) (string, error) {
	c := caller(r)
	switch {
	case c.Name == "" && given == "":
		return "", badParam(field, "say who you are (or send a token)")
	case c.Name == "":
		return given, nil
	case given != "" && given != c.Name:
		return "", badParam(field, "%q is not %q, whose token this is; leave %s out", given, c.Name, field)
	}
	return c.Name, nil
}
