#!/usr/bin/env bash
# The main job, end to end, on the example platform spec (run by `make demo`).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="$(mktemp -d "${TMPDIR:-/tmp}/permgen-demo.XXXXXX")"
trap 'rm -rf "$OUT"' EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. Compile the platform spec (6 roles, 2 buckets, a user template)"
permgen compile examples/platform.yaml --out "$OUT/policies"
ls "$OUT/policies"
permgen compile examples/platform.yaml --role analytics-reader --indent 2

step "2. A session policy for one mobile user (placeholders filled), and the role's ceiling"
permgen compile examples/platform.yaml --role mobile-uploader --var user=alice
permgen compile examples/platform.yaml --role mobile-uploader
echo "a value that could widen the grant is refused:"
permgen compile examples/platform.yaml --role mobile-uploader --var 'user=*' || echo "(exit $?)"

step "3. Lint the spec and the compiled policies"
permgen lint examples/platform.yaml "$OUT"/policies/*.json
echo "and a policy with the classic bugs:"
cat > "$OUT/bad.json" <<'JSON'
{"Version": "1", "Statement": [
  {"Effect": "Allow", "Action": ["oss:GetObject", "oss:PutObject"], "Resource": "acs:oss:*:*:corp-data"},
  {"Effect": "Allow", "Action": "oss:ListObjects", "Resource": "acs:oss:cn-hangzhou:*:corp-data"},
  {"Effect": "Allow", "Action": "oss:DeleteObjectVersion", "Resource": "acs:oss:*:*:corp-data/*"},]}
JSON
permgen lint "$OUT/bad.json" || echo "(exit $?: findings at or above the threshold)"

step "4. Explain a request: may the analytics bot list the whole bucket?"
permgen explain "$OUT/policies/analytics-reader.json" --action oss:ListObjects \
  --resource acs:oss:*:1234567890123456:corp-data --context oss:Prefix= \
  --context acs:SecureTransport=true --context acs:SourceVpc=vpc-bp1corpdata01 --expect deny

step "5. Semantic diff: a change that lets ingestion delete"
python3 - "$OUT/policies/ingest-writer.json" "$OUT/ingest-writer-new.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
for s in doc["Statement"]:
    if s["Effect"] == "Allow" and "oss:PutObject" in s["Action"]:
        s["Action"].append("oss:DeleteObject")
json.dump(doc, open(sys.argv[2], "w"))
PY
permgen diff "$OUT/policies/ingest-writer.json" "$OUT/ingest-writer-new.json" --fail-on-new-access || echo "(exit $?: new access; CI would block)"
echo "reordering the same statements is equivalent:"
python3 - "$OUT/policies/ingest-writer.json" "$OUT/reordered.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
doc["Statement"].reverse()
json.dump(doc, open(sys.argv[2], "w"))
PY
permgen diff "$OUT/policies/ingest-writer.json" "$OUT/reordered.json" --fail-on-new-access

step "6. Review a pull request that edits the spec"
REPO="$OUT/repo"
mkdir -p "$REPO"
cp -r examples/platform.yaml examples/templates "$REPO/"
git -C "$REPO" init -q -b main
git -C "$REPO" -c user.email=demo@example.invalid -c user.name=demo add -A
git -C "$REPO" -c user.email=demo@example.invalid -c user.name=demo commit -q -m base
sed -i 's/options: {delete: false, read: true}/options: {delete: true, read: true}/' "$REPO/platform.yaml"
permgen review "$REPO/platform.yaml" --base main --fail-on-risk destructive || echo "(exit $?: the destructive change is blocked)"

if permgen emulator --help >/dev/null 2>&1; then
  step "7. The account side on the embedded emulator"
  bash examples/demo-account.sh "$OUT"
fi
printf '\n\033[1mdone.\033[0m\n'
