package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/vaultcrux/vaultcrux/internal/receipt"
)

// errVerifyFailed makes the exit status 1 after the report is printed.
var errVerifyFailed = errors.New("verification failed")

// runVerify verifies receipts, proofpacks, chains, checkpoints and
// consistency proofs offline: it reads files, opens no store and no
// network connection. Exit status 0 only when every document holds.
func runVerify(_ context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	asJSON := fs.Bool("json", false, "print one JSON report per document")
	keysFile := fs.String("keys", "", "trusted signing keys: the saved answer of GET /v1/receipts/signing-keys")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	files := fs.Args()
	if len(files) == 0 {
		return fmt.Errorf("%w: verify needs at least one FILE (or - for stdin)", errUsage)
	}
	var trusted receipt.KeySet
	if *keysFile != "" {
		data, err := readInput(e, *keysFile)
		if err != nil {
			return err
		}
		if trusted, err = receipt.ParseKeyList(data); err != nil {
			return fmt.Errorf("--keys %s: %w", *keysFile, err)
		}
	}
	type fileReport struct {
		File string `json:"file"`
		*receipt.Report
	}
	var reports []fileReport
	allOK := true
	for _, f := range files {
		data, err := readInput(e, f)
		var rep *receipt.Report
		if err != nil {
			rep = &receipt.Report{Kind: "unknown", Failures: []receipt.Problem{{Code: receipt.CodeReceiptMissing, Detail: err.Error()}}}
		} else {
			rep = receipt.VerifyDocument(data, trusted)
		}
		allOK = allOK && rep.OK
		reports = append(reports, fileReport{File: f, Report: rep})
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(reports); err != nil {
			return err
		}
	} else {
		for _, r := range reports {
			printReport(e.stdout, r.File, r.Report)
		}
	}
	if !allOK {
		return errVerifyFailed
	}
	return nil
}

func readInput(e *env, name string) ([]byte, error) {
	var r io.Reader
	if name == "-" {
		r = e.stdin
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, receipt.MaxDocument+1))
	if err != nil {
		return nil, err
	}
	return data, nil
}

func printReport(w io.Writer, file string, r *receipt.Report) {
	status := "OK  "
	if !r.OK {
		status = "FAIL"
	}
	what := r.Kind
	if r.ReceiptID != "" {
		what += " " + r.ReceiptID
	}
	fmt.Fprintf(w, "%s %s: %s\n", status, file, what)
	for _, p := range r.Failures {
		fmt.Fprintf(w, "     %s: %s\n", p.Code, p.Detail)
	}
	if r.OK && r.KeysFrom == "document" {
		fmt.Fprintln(w, "     note: checked against the keys in the document itself; pass --keys with keys you obtained independently to know who signed")
	}
}
