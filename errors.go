package vaultcrux

import (
	"errors"
	"fmt"
)

// Kind classifies an error for the edges of the system. The zero Kind is
// Internal: an unclassified error is never shown to a client.
type Kind uint8

// The kinds, each mapped to one HTTP status by the server.
const (
	Internal               Kind = iota // 500, message replaced by "internal error"
	Invalid                            // 400 invalid_request
	Unauthenticated                    // 401 unauthenticated
	Forbidden                          // 403 forbidden (role)
	TenantMismatch                     // 403 tenant_mismatch
	NotFound                           // 404 not_found
	FeatureDisabled                    // 404 feature_disabled
	Conflict                           // 409 conflict
	IdempotencyKeyReused               // 409 idempotency_key_reused
	LastOwner                          // 409 last_owner
	TooLarge                           // 413 payload_too_large
	IdempotencyKeyRequired             // 428 idempotency_key_required
	RateLimited                        // 429 rate_limited
	Unavailable                        // 503 not_ready
)

var kindNames = [...]string{
	Internal:               "internal",
	Invalid:                "invalid_request",
	Unauthenticated:        "unauthenticated",
	Forbidden:              "forbidden",
	TenantMismatch:         "tenant_mismatch",
	NotFound:               "not_found",
	FeatureDisabled:        "feature_disabled",
	Conflict:               "conflict",
	IdempotencyKeyReused:   "idempotency_key_reused",
	LastOwner:              "last_owner",
	TooLarge:               "payload_too_large",
	IdempotencyKeyRequired: "idempotency_key_required",
	RateLimited:            "rate_limited",
	Unavailable:            "not_ready",
}

// String returns the snake_case error code of the kind, as the API shows it.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "internal"
}

// Error is the error type of vaultcrux. Op names the operation that failed
// ("store.CreateTenant"); Kind classifies it; Msg, when set, is safe to show
// to the client as it is; Err is the cause, never shown to a client.
type Error struct {
	Op   string
	Kind Kind
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	switch {
	case e.Op != "" && e.Err != nil:
		return e.Op + ": " + e.Err.Error()
	case e.Err != nil:
		return e.Err.Error()
	case e.Op != "" && e.Msg != "":
		return e.Op + ": " + e.Msg
	case e.Msg != "":
		return e.Msg
	default:
		return e.Op + ": " + e.Kind.String()
	}
}

func (e *Error) Unwrap() error { return e.Err }

// E builds a classified error with a user-safe message.
func E(kind Kind, msg string) error { return &Error{Kind: kind, Msg: msg} }

// Ef builds a classified error with a formatted user-safe message. Only
// values that are safe for the caller to see may be formatted into it.
func Ef(kind Kind, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// ErrorKind reports the kind of the outermost *Error in err's chain that has
// one other than Internal, or Internal.
func ErrorKind(err error) Kind {
	for err != nil {
		var e *Error
		if !errors.As(err, &e) {
			return Internal
		}
		if e.Kind != Internal {
			return e.Kind
		}
		err = e.Err
	}
	return Internal
}

// ErrorMessage returns the user-safe message of err: the message of the
// classified error that decided its kind, or "" when there is none (the
// caller then shows a generic text for the kind).
func ErrorMessage(err error) string {
	for err != nil {
		var e *Error
		if !errors.As(err, &e) {
			return ""
		}
		if e.Kind != Internal {
			return e.Msg
		}
		err = e.Err
	}
	return ""
}

// Wrap adds op context to *errp once, where the operation is known:
//
//	defer vaultcrux.Wrap(&err, "store.CreateTenant")
//
// The kind and message of the cause are kept.
func Wrap(errp *error, op string) {
	if *errp == nil {
		return
	}
	*errp = &Error{Op: op, Err: *errp}
}
