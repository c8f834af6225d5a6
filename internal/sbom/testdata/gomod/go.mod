// The app's module.
module example.com/hello

go 1.22

toolchain go1.22.5

require (
	github.com/go-chi/chi/v5 v5.0.12
	github.com/google/uuid v1.6.0
	golang.org/x/text v0.14.0 // indirect
	github.com/old/lib v1.0.0
	github.com/local/thing v0.1.0
	"github.com/Azure/go-autorest" v14.2.0+incompatible // indirect; via sdk
)

require github.com/pkg/errors v0.9.1 // indirect

replace github.com/old/lib => github.com/new/lib v1.2.0

replace (
	github.com/local/thing => ./thing
)

exclude golang.org/x/text v0.13.0

retract v0.0.1

godebug default=go1.21
