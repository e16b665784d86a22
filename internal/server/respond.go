package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/vaultcrux/vaultcrux"
)

// rendered is a response ready to be written (and, for idempotent
// mutations, stored for replay).
type rendered struct {
	status int
	header map[string]string
	body   []byte
}

// fieldsError attaches documented extra fields to an error response
// (e.g. the per-check status of /readyz). The fields must be user-safe.
type fieldsError struct {
	err    error
	fields map[string]any
}

func (e *fieldsError) Error() string { return e.err.Error() }
func (e *fieldsError) Unwrap() error { return e.err }

// headersError attaches response headers to an error response: the
// retry-after of a 429, the expired cookie that clears a bad session.
type headersError struct {
	err     error
	headers map[string]string
}

func (e *headersError) Error() string { return e.err.Error() }
func (e *headersError) Unwrap() error { return e.err }

var kindStatus = map[vaultcrux.Kind]int{
	vaultcrux.Internal:               http.StatusInternalServerError,
	vaultcrux.Invalid:                http.StatusBadRequest,
	vaultcrux.Unauthenticated:        http.StatusUnauthorized,
	vaultcrux.Forbidden:              http.StatusForbidden,
	vaultcrux.TenantMismatch:         http.StatusForbidden,
	vaultcrux.NotFound:               http.StatusNotFound,
	vaultcrux.FeatureDisabled:        http.StatusNotFound,
	vaultcrux.Conflict:               http.StatusConflict,
	vaultcrux.IdempotencyKeyReused:   http.StatusConflict,
	vaultcrux.LastOwner:              http.StatusConflict,
	vaultcrux.TooLarge:               http.StatusRequestEntityTooLarge,
	vaultcrux.IdempotencyKeyRequired: http.StatusPreconditionRequired,
	vaultcrux.RateLimited:            http.StatusTooManyRequests,
	vaultcrux.Unavailable:            http.StatusServiceUnavailable,
}

var kindType = map[vaultcrux.Kind]string{
	vaultcrux.Internal:               "internal",
	vaultcrux.Invalid:                "invalid_request",
	vaultcrux.Unauthenticated:        "authentication",
	vaultcrux.Forbidden:              "authorization",
	vaultcrux.TenantMismatch:         "authorization",
	vaultcrux.NotFound:               "not_found",
	vaultcrux.FeatureDisabled:        "not_found",
	vaultcrux.Conflict:               "conflict",
	vaultcrux.IdempotencyKeyReused:   "conflict",
	vaultcrux.LastOwner:              "conflict",
	vaultcrux.TooLarge:               "invalid_request",
	vaultcrux.IdempotencyKeyRequired: "invalid_request",
	vaultcrux.RateLimited:            "rate_limit",
	vaultcrux.Unavailable:            "unavailable",
}

// HTTPStatus returns the status code of an error kind.
func HTTPStatus(k vaultcrux.Kind) int {
	if s, ok := kindStatus[k]; ok {
		return s
	}
	return http.StatusInternalServerError
}

type okEnvelope struct {
	OK   bool `json:"ok"`
	Data any  `json:"data"`
}

type errEnvelope struct {
	OK    bool           `json:"ok"`
	Error map[string]any `json:"error"`
}

// render turns a handler's result into bytes. It is the one place that
// decides what of an error a client may see.
func (s *Server) render(st *reqState, resp *response, err error) rendered {
	if err != nil {
		return s.renderError(st, err)
	}
	if resp.raw != nil {
		return *resp.raw
	}
	out := rendered{status: resp.status, header: map[string]string{"Content-Type": "application/json"}}
	if out.status == 0 {
		out.status = http.StatusOK
	}
	for k, v := range resp.headers {
		out.header[k] = v
	}
	if resp.receiptID != "" {
		out.header["X-Receipt-Id"] = resp.receiptID
	}
	body, err := encodeJSON(okEnvelope{OK: true, Data: resp.data})
	if err != nil {
		return s.renderError(st, err)
	}
	out.body = body
	return out
}

func (s *Server) renderError(st *reqState, err error) rendered {
	if de, ok := asDecisionError(err); ok {
		body, jerr := encodeJSON(errEnvelope{OK: false, Error: shieldErrorBody(de, st.id)})
		if jerr == nil {
			h := map[string]string{"Content-Type": "application/json"}
			if r := de.Result; r.Recorded && r.ReceiptID != "" {
				// A blocked call's receipt is the decision's: as on every
				// receipted answer, the header names it.
				h["X-Receipt-Id"] = r.ReceiptID
			}
			return rendered{status: http.StatusForbidden, header: h, body: body}
		}
	}
	kind := vaultcrux.ErrorKind(err)
	msg := vaultcrux.ErrorMessage(err)
	if kind == vaultcrux.Internal {
		s.metrics.internalErrors.Inc()
		s.log.LogAttrs(context.Background(), slog.LevelError, "internal error",
			slog.String("request_id", st.id), slog.String("route", st.route), slog.String("error", err.Error()))
		msg = "internal error"
	}
	if msg == "" {
		msg = defaultMessage(kind)
	}
	obj := map[string]any{
		"type":      kindType[kind],
		"code":      kind.String(),
		"message":   msg,
		"requestId": st.id,
	}
	var fe *fieldsError
	if kind != vaultcrux.Internal && errors.As(err, &fe) {
		for k, v := range fe.fields {
			if _, taken := obj[k]; !taken {
				obj[k] = v
			}
		}
	}
	out := rendered{status: HTTPStatus(kind), header: map[string]string{"Content-Type": "application/json"}}
	var he *headersError
	if kind != vaultcrux.Internal && errors.As(err, &he) {
		for k, v := range he.headers {
			out.header[k] = v
		}
	}
	body, jerr := encodeJSON(errEnvelope{OK: false, Error: obj})
	if jerr != nil {
		body = []byte(`{"ok":false,"error":{"type":"internal","code":"internal","message":"internal error"}}`)
	}
	out.body = body
	return out
}

func defaultMessage(k vaultcrux.Kind) string {
	switch k {
	case vaultcrux.NotFound:
		return "not found"
	case vaultcrux.Unauthenticated:
		return "authentication required"
	case vaultcrux.Forbidden:
		return "forbidden"
	case vaultcrux.Unavailable:
		return "not ready"
	}
	return k.String()
}

func (s *Server) writeError(w http.ResponseWriter, st *reqState, err error) {
	s.writeRendered(w, s.renderError(st, err))
}

func (s *Server) writeRendered(w http.ResponseWriter, out rendered) {
	h := w.Header()
	for k, v := range out.header {
		h.Set(k, v)
	}
	// Canonical spellings: Set then skips re-canonicalising (an allocation).
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	// API answers are data, never a page: nothing in them may load or frame.
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	h.Set("Content-Length", strconv.Itoa(len(out.body)))
	w.WriteHeader(out.status)
	_, _ = w.Write(out.body)
}

// encodeJSON writes v without HTML escaping and without the trailing newline.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
