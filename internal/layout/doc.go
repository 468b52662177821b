// Package layout holds no code, only the test that keeps the dependency rules of
// DESIGN.md true as the code grows: the domain imports only the standard library, concrete
// adapters are wired only by composition roots, adapters don't import their siblings, and
// the gateway never links the store.
package layout
