resource "alicloud_ram_policy" "ingest_writer" {
  policy_name     = "ingest-writer"
  description     = "Write raw ingestion files; cannot delete"
  rotate_strategy = "DeleteOldestNonDefaultVersionWhenLimitExceeded"
  policy_document = jsonencode({
    "Version" : "1",
    "Statement" : [
      {
        "Effect" : "Deny",
        "Action" : [
          "oss:PutObject"
        ],
        "Resource" : [
          "acs:oss:*:1234567890123456:corp-data/ingest/*"
        ],
        "Condition" : {
          "StringEquals" : {
            "oss:x-oss-object-acl" : [
              "public-read",
              "public-read-write"
            ]
          }
        }
      },
      {
        "Effect" : "Allow",
        "Action" : [
          "oss:AbortMultipartUpload",
          "oss:GetObject",
          "oss:ListParts",
          "oss:PutObject"
        ],
        "Resource" : [
          "acs:oss:*:1234567890123456:corp-data/ingest/*"
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
      },
      {
        "Effect" : "Allow",
        "Action" : [
          "oss:ListObjects"
        ],
        "Resource" : [
          "acs:oss:*:1234567890123456:corp-data"
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
          },
          "StringLike" : {
            "oss:Prefix" : [
              "ingest/*"
            ]
          }
        }
      }
    ]
  })
}

resource "alicloud_ram_role_policy_attachment" "ingest_writer_role_EtlRole" {
  policy_name = alicloud_ram_policy.ingest_writer.policy_name
  policy_type = "Custom"
  role_name   = "EtlRole"
}
