// Package browser tests the cloud's console (the dashboard page) in a real
// browser: Debian's chromium, headless, driven from Go with chromedp. Each
// test starts the real fieldwatch-cloud binary on embedded defaults (its own
// MQTT broker, SQLite) and two real fieldwatch-gateway binaries polling
// simulated Modbus sensors, opens the console, and fails on any console
// error, uncaught exception or Content-Security-Policy violation.
//
// The package holds only tests; see harness_test.go for the harness and
// docs/testing.md for what the tests prove and how to run them.
package browser
