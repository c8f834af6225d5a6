package errkind

import "net/http"

// Status is the one table from error kinds to HTTP status codes.
func Status(k Kind) int {
	switch k {
	case Invalid:
		return http.StatusBadRequest
	case NotFound:
		return http.StatusNotFound
	case Conflict:
		return http.StatusConflict
	case Permission:
		return http.StatusForbidden
	case Unavailable:
		return http.StatusServiceUnavailable
	case Unauthenticated:
		return http.StatusUnauthorized
	case TooMany:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

// HTTPStatus is the status code of an error's kind.
func HTTPStatus(err error) int { return Status(Of(err)) }
