// Package archtest holds the tests that keep the code base's shape: the
// dependency rules of DESIGN.md and one package doc comment per package.
// It has no code of its own.
package archtest
