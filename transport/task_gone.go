package transport

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// maxTaskGonePeek bounds how much of a 400 or 404 body is read to learn
// whether it says the task is gone; the error bodies that do are tiny.
const maxTaskGonePeek = 4 << 10

// taskGoneCodes are the error codes with which a protected resource says
// it no longer knows the task an assertion names.
var taskGoneCodes = map[string]bool{
	"invalid_task_id": true,
	"task_not_found":  true,
	"task_expired":    true,
}

// peekTaskGone reports whether resp, a 400 or 404 answer, says the task of
// the request is gone. It reads at most maxTaskGonePeek bytes and returns
// resp with a body that still yields everything, unread part included.
func peekTaskGone(resp *http.Response) (*http.Response, bool) {
	prefix, err := io.ReadAll(io.LimitReader(resp.Body, maxTaskGonePeek))
	out := new(http.Response)
	*out = *resp
	out.Body = readCloser{io.MultiReader(bytes.NewReader(prefix), resp.Body), resp.Body}
	if err != nil || len(prefix) == 0 {
		return out, false
	}
	return out, taskGoneCodes[errorCode(prefix)]
}

type readCloser struct {
	io.Reader
	io.Closer
}

// errorCode returns the error code of a JSON error body, lower-cased:
// {"error":"code"}, {"error":{"code":"code"}} or {"code":"code"}; "" when
// there is none (or the body is not such JSON, or was cut by the peek).
func errorCode(body []byte) string {
	var b struct {
		Error json.RawMessage `json:"error"`
		Code  string          `json:"code"`
	}
	if json.Unmarshal(body, &b) != nil {
		return ""
	}
	var s string
	if json.Unmarshal(b.Error, &s) == nil && s != "" {
		return strings.ToLower(s)
	}
	var e struct {
		Code string `json:"code"`
	}
	if json.Unmarshal(b.Error, &e) == nil && e.Code != "" {
		return strings.ToLower(e.Code)
	}
	return strings.ToLower(b.Code)
}

// rejectsFreshTask reports whether resp, the answer to a replay signed
// with a just-registered task, rejects that task too: a 401, or a 400 or
// 404 saying the task is gone. The task is then held as after a 401, so a
// server that says so on every request does not get a registration per
// request. It returns resp with its body intact.
func rejectsFreshTask(resp *http.Response) (*http.Response, bool) {
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return resp, true
	case http.StatusBadRequest, http.StatusNotFound:
		return peekTaskGone(resp)
	}
	return resp, false
}
