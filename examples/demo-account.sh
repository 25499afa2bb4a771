#!/usr/bin/env bash
# The account side of the demo, on the embedded emulator (run by examples/demo.sh).
set -euo pipefail
OUT="$1"
permgen emulator --port 0 > "$OUT/emulator.env" &
EMU=$!
trap 'kill $EMU 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  [ -s "$OUT/emulator.env" ] && [ "$(wc -l < "$OUT/emulator.env")" -ge 3 ] && break
  sleep 0.1
done
# shellcheck disable=SC1091
source "$OUT/emulator.env"
export PERMGEN_ADMIN_KEY_ID="$ALIBABA_CLOUD_ACCESS_KEY_ID" PERMGEN_ADMIN_KEY_SECRET="$ALIBABA_CLOUD_ACCESS_KEY_SECRET"
echo "emulator at $PERMGEN_ENDPOINT (account 1234567890123456)"

echo "an administrator creates the principals the spec names, and a token-vendor user with a key (RAM API, real SDK):"
python3 - "$OUT/vendor.env" "$OUT/deployer.env" <<'PY'
import json, os, shlex, sys
from permgen.account.sdk import call, make_client
from permgen.account.types import AccessKey, ClientConfig, Secret
config = ClientConfig(endpoint=os.environ["PERMGEN_ENDPOINT"])
admin = make_client(AccessKey(os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"], Secret(os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"])), config)
trust = {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"RAM": ["acs:ram::1234567890123456:root"]}}]}
for role in ("oss-uploader", "EtlRole"):
    call(admin, "Ram", "CreateRole", {"RoleName": role, "AssumeRolePolicyDocument": json.dumps(trust)}, config)
for user in ("analytics-bot", "rotator-bot", "token-vendor"):
    call(admin, "Ram", "CreateUser", {"UserName": user}, config)
for group in ("analysts", "finance", "auditors"):
    call(admin, "Ram", "CreateGroup", {"GroupName": group}, config)
# the token vendor may assume the one role it vends, and nothing else
vend = {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "acs:ram:*:1234567890123456:role/oss-uploader"}]}
call(admin, "Ram", "CreatePolicy", {"PolicyName": "token-vendor-assume", "PolicyDocument": json.dumps(vend)}, config)
call(admin, "Ram", "AttachPolicyToUser", {"UserName": "token-vendor", "PolicyName": "token-vendor-assume", "PolicyType": "Custom"}, config)
key = call(admin, "Ram", "CreateAccessKey", {"UserName": "token-vendor"}, config)["AccessKey"]
with open(sys.argv[1], "w") as fh:
    fh.write(f"export ALIBABA_CLOUD_ACCESS_KEY_ID={shlex.quote(key['AccessKeyId'])}\n")
    fh.write(f"export ALIBABA_CLOUD_ACCESS_KEY_SECRET={shlex.quote(key['AccessKeySecret'])}\n")
# permgen itself runs as a deployer RAM user: account commands refuse the root key
call(admin, "Ram", "CreateUser", {"UserName": "deployer"}, config)
for name in ("AliyunRAMFullAccess", "AliyunOSSReadOnlyAccess"):
    call(admin, "Ram", "AttachPolicyToUser", {"UserName": "deployer", "PolicyName": name, "PolicyType": "System"}, config)
dkey = call(admin, "Ram", "CreateAccessKey", {"UserName": "deployer"}, config)["AccessKey"]
with open(sys.argv[2], "w") as fh:
    fh.write(f"export ALIBABA_CLOUD_ACCESS_KEY_ID={shlex.quote(dkey['AccessKeyId'])}\n")
    fh.write(f"export ALIBABA_CLOUD_ACCESS_KEY_SECRET={shlex.quote(dkey['AccessKeySecret'])}\n")
print("  roles oss-uploader, EtlRole; users analytics-bot, rotator-bot; groups analysts, finance, auditors")
print("  deployer (RAM full access, OSS read-only) runs permgen; its key", dkey["AccessKeyId"])
print("  token-vendor may only sts:AssumeRole on role oss-uploader; its key", key["AccessKeyId"])
PY

# shellcheck disable=SC1091
source "$OUT/deployer.env"
echo "the root key is refused by account commands:"
permgen plan examples/platform.yaml --access-key-id "$PERMGEN_ADMIN_KEY_ID" --access-key-secret "$PERMGEN_ADMIN_KEY_SECRET" || echo "(exit $?)"
echo "plan, apply, and plan again (no drift), as the deployer:"
permgen plan examples/platform.yaml || true
permgen apply examples/platform.yaml --yes
permgen plan examples/platform.yaml --detailed-exitcode

echo "diff a role against what a principal has today (a group grant gives the bot more than its role):"
python3 - <<'PY'
import os
from permgen.account.sdk import call, make_client
from permgen.account.types import AccessKey, ClientConfig, Secret
config = ClientConfig(endpoint=os.environ["PERMGEN_ENDPOINT"])
admin = make_client(AccessKey(os.environ["PERMGEN_ADMIN_KEY_ID"], Secret(os.environ["PERMGEN_ADMIN_KEY_SECRET"])), config)
call(admin, "Ram", "AddUserToGroup", {"UserName": "analytics-bot", "GroupName": "analysts"}, config)
call(admin, "Ram", "AttachPolicyToGroup", {"GroupName": "analysts", "PolicyName": "AliyunOSSReadOnlyAccess", "PolicyType": "System"}, config)
PY
permgen diff examples/platform.yaml --role analytics-reader --principal user:analytics-bot | head -12
echo "import the account back into a spec (template roles where proven equivalent, raw ones otherwise):"
permgen import --out "$OUT/imported.yaml" 2>&1 | sed 's/^/  /'
sed -n '/^  # source: custom policy ingest-writer/,/adopt: true/p' "$OUT/imported.yaml"
echo "and plan with the imported spec shows no changes:"
permgen plan "$OUT/imported.yaml" --detailed-exitcode
echo "right-size a role from a month of access logs (a proposal the diff engine proves narrower):"
permgen usage --spec examples/platform.yaml --logs examples/usage/oss.log \
  --logs examples/usage/actiontrail.jsonl --keys examples/usage/keys.yaml --role analytics-reader \
  | sed -n '3,8p'
# shellcheck disable=SC1091
source "$OUT/vendor.env"
echo "the token vendor mints a 15-minute, write-only token for alice's prefix:"
permgen token mobile-uploader --spec examples/platform.yaml --var user=alice --format json > "$OUT/token.json"
python3 - "$OUT/token.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"  {d['AccessKeyId']} for session {d['RoleSessionName']}, expires {d['Expiration']}")
PY
echo "a command run with the token in its environment sees only STS credentials:"
permgen token mobile-uploader --spec examples/platform.yaml --var user=alice --exec -- \
  python3 -c "import os; print('  OSS_ACCESS_KEY_ID =', os.environ['OSS_ACCESS_KEY_ID'][:12] + '...')"

echo
echo "audit: who can destroy which data for good? An ETL user may delete in an unversioned bucket:"
# shellcheck disable=SC1091
source "$OUT/deployer.env"
python3 - <<'PY'
import json, os
from permgen.account.oss_sdk import SdkOssClient
from permgen.account.sdk import call, make_client
from permgen.account.types import AccessKey, ClientConfig, Secret
config = ClientConfig(endpoint=os.environ["PERMGEN_ENDPOINT"])
key = AccessKey(os.environ["PERMGEN_ADMIN_KEY_ID"], Secret(os.environ["PERMGEN_ADMIN_KEY_SECRET"]))
admin = make_client(key, config)
SdkOssClient(key, ClientConfig(endpoint=os.environ["PERMGEN_OSS_ENDPOINT"])).put_bucket("logs-raw")
doc = {"Version": "1", "Statement": [{"Effect": "Allow", "Action": ["oss:GetObject", "oss:DeleteObject"], "Resource": "acs:oss:*:*:logs-raw/*"}]}
call(admin, "Ram", "CreateUser", {"UserName": "etl"}, config)
call(admin, "Ram", "CreatePolicy", {"PolicyName": "p-etl", "PolicyDocument": json.dumps(doc)}, config)
call(admin, "Ram", "AttachPolicyToUser", {"UserName": "etl", "PolicyName": "p-etl", "PolicyType": "Custom"}, config)
PY
permgen audit --save-snapshot "$OUT/audit.json" --fail-on irrecoverable-delete | sed -n '/^bucket logs-raw/,/^$/p' || true
echo "the fix it shows: enable versioning on logs-raw; then the same audit passes that check:"
python3 - <<'PY'
import os
from permgen.account.oss_sdk import SdkOssClient
from permgen.account.types import AccessKey, ClientConfig, Secret
key = AccessKey(os.environ["PERMGEN_ADMIN_KEY_ID"], Secret(os.environ["PERMGEN_ADMIN_KEY_SECRET"]))
SdkOssClient(key, ClientConfig(endpoint=os.environ["PERMGEN_OSS_ENDPOINT"])).put_bucket_versioning("logs-raw", "Enabled")
PY
permgen audit --fail-on irrecoverable-delete --format json > "$OUT/after.json" && echo "  no irrecoverable-delete left (exit 0)"
echo "the saved snapshot audits offline, the same as before the fix:"
permgen audit --snapshot "$OUT/audit.json" --fail-on irrecoverable-delete > /dev/null || echo "  (exit $?: the finding, reproduced from the snapshot)"
