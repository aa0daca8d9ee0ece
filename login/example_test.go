package login_test

import (
	"context"
	"errors"
	"log"
	"os"
	"time"

	"github.com/agentauth/agentauth/login"
)

// A headless server signs in with the device-code flow: the user opens the
// printed URL elsewhere and enters the code; the login lands in
// $CODEX_HOME/auth.json, where the transport (and the Codex CLI) find it.
func ExampleDeviceCode() {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	err := login.DeviceCode(ctx, login.Options{Out: os.Stdout})
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		log.Fatal("the code was not approved in time")
	case err != nil:
		log.Fatal(err)
	}
}

// Logging out revokes the login's token and removes it from auth.json; a
// failed revoke still logs out locally.
func ExampleLogout() {
	err := login.Logout(context.Background(), login.Options{})
	switch {
	case errors.Is(err, login.ErrNotLoggedIn):
		log.Print("not logged in")
	case errors.Is(err, login.ErrRevokeFailed):
		log.Printf("logged out locally: %v", err)
	case err != nil:
		log.Fatal(err)
	}
}
