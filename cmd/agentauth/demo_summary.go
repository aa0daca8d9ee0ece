// demo's summary: the shape of what a run counted, as printed and as JSON.

package main

// demoSummary is what demo prints, as a table or (with --json) as one JSON
// object. Counts are of this run only.
type demoSummary struct {
	// Scenario says in one sentence what the run did: the credential, the
	// workload and the server.
	Scenario  string `json:"scenario"`
	ServerURL string `json:"server_url"`
	Embedded  bool   `json:"embedded"`
	Planned   int64  `json:"planned"`
	Requests  struct {
		Thread     int64 `json:"thread"`
		Background int64 `json:"background"`
		Total      int64 `json:"total"`
		Accepted   int64 `json:"accepted"` // answered 2xx
	} `json:"requests"`
	// Modes are the transport's counts of how requests were sent
	// (replays after a 401 included): AgentAssertion on a thread task or on
	// the process task, or Bearer while provisioning was unavailable.
	Modes struct {
		ThreadTask  uint64 `json:"thread_task"`
		ProcessTask uint64 `json:"process_task"`
		Bearer      uint64 `json:"bearer"`
	} `json:"modes"`
	Registrations struct {
		Agent   uint64 `json:"agent"`
		Thread  uint64 `json:"thread"`
		Process uint64 `json:"process"`
	} `json:"registrations"`
	Signatures      uint64 `json:"signatures"`
	Failures        int64  `json:"failures"`   // requests that returned an error
	Rejections      int64  `json:"rejections"` // requests answered non-2xx
	Canceled        int64  `json:"canceled"`   // requests cut short by interruption or the run's timeout
	EchoMismatches  int64  `json:"echo_mismatches"`
	Replays         uint64 `json:"replays"`
	BearerFallbacks uint64 `json:"bearer_fallbacks"`
	// PassThrough counts requests the transport sent without a credential
	// because their origin was not first-party.
	PassThrough uint64 `json:"pass_through"`
	// LatencyMS is measured over the requests that got a response; both
	// are null when none did.
	LatencyMS struct {
		P50 *float64 `json:"p50"`
		P99 *float64 `json:"p99"`
	} `json:"latency_ms"`
	// RegistrationLatencyMS is the duration of each successful thread
	// task registration as the transport reported it to its Observer (one
	// AuthAPI round trip, signing included); null when there was none.
	RegistrationLatencyMS struct {
		P50     *float64 `json:"p50"`
		P99     *float64 `json:"p99"`
		Samples int      `json:"samples"`
	} `json:"registration_latency_ms"`
	// Expected is what the demo's workload must register: one agent, one
	// task per thread key, one process task when there is background work.
	Expected struct {
		Agent   uint64 `json:"agent"`
		Thread  uint64 `json:"thread"`
		Process uint64 `json:"process"`
	} `json:"expected_registrations"`
	// EchoChecked says whether responses were compared with the request:
	// only the reference server's echo (which it marks with a header) is
	// understood; other servers are judged by status codes and counts.
	EchoChecked bool    `json:"echo_checked"`
	ElapsedMS   float64 `json:"elapsed_ms"`
	// Errors are the first failure of each kind (redacted), with counts.
	Errors []demoErrorKind `json:"errors,omitempty"`
	// Warnings are what the transport logged at warn level (first of each
	// message), such as why it fell back to Bearer.
	Warnings []demoErrorKind `json:"warnings,omitempty"`
	// Server holds the embedded server's own counters; nil with --server.
	Server *demoServerCounts `json:"server,omitempty"`
}

// demoServerCounts is the embedded reference server's view of the run.
type demoServerCounts struct {
	AgentRegistrations   int  `json:"agent_registrations"`
	ThreadRegistrations  int  `json:"thread_registrations"`
	ProcessRegistrations int  `json:"process_registrations"`
	Accepted             int  `json:"accepted"`
	Rejections           int  `json:"rejections"`
	Consistent           bool `json:"consistent"` // the server counted what the client did
	// Unsettled is set when the run was cut short: the server may have
	// answered up to Canceled requests the client stopped waiting for, so
	// its accepted count may exceed the client's by that much.
	Unsettled bool `json:"unsettled,omitempty"`
}
