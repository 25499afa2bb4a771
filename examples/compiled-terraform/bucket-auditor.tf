resource "alicloud_ram_policy" "bucket_auditor" {
  policy_name     = "bucket-auditor"
  description     = "Read bucket configuration for audits"
  rotate_strategy = "DeleteOldestNonDefaultVersionWhenLimitExceeded"
  policy_document = jsonencode({
    "Version" : "1",
    "Statement" : [
      {
        "Effect" : "Allow",
        "Action" : [
          "oss:GetBucketAcl",
          "oss:GetBucketInfo",
          "oss:GetBucketLifecycle",
          "oss:GetBucketPolicy",
          "oss:GetBucketVersioning"
        ],
        "Resource" : [
          "acs:oss:*:1234567890123456:corp-data",
          "acs:oss:*:1234567890123456:corp-reports"
        ],
        "Condition" : {
          "Bool" : {
            "acs:SecureTransport" : [
              "true"
            ]
          },
          "StringEquals" : {
            "acs:SourceVpc" : [
              "vpc-bp1corpdata01"
            ]
          }
        }
      }
    ]
  })
}

resource "alicloud_ram_group_policy_attachment" "bucket_auditor_group_auditors" {
  policy_name = alicloud_ram_policy.bucket_auditor.policy_name
  policy_type = "Custom"
  group_name  = "auditors"
}
