.PHONY: build test run ci

build:
	scripts/build.sh

test:
	go test -race -count=1 ./...

run:
	go run ./cmd/vaultcrux serve

ci:
	bash .ci/run
