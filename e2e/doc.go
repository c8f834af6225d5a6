// Package e2e holds the end-to-end tests: they build and run the noops
// binary exactly as README tells a new user to, and check what a user sees.
package e2e
