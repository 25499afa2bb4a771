resource "alicloud_ram_policy" "mobile_uploader" {
  policy_name     = "mobile-uploader"
  description     = "Mobile clients upload into their own prefix"
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
          "acs:oss:*:1234567890123456:user-uploads/incoming/*/*"
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
          "oss:ListParts",
          "oss:PutObject"
        ],
        "Resource" : [
          "acs:oss:*:1234567890123456:user-uploads/incoming/*/*"
        ],
        "Condition" : {
          "Bool" : {
            "acs:SecureTransport" : [
              "true"
            ]
          }
        }
      }
    ]
  })
}

resource "alicloud_ram_role_policy_attachment" "mobile_uploader_role_oss_uploader" {
  policy_name = alicloud_ram_policy.mobile_uploader.policy_name
  policy_type = "Custom"
  role_name   = "oss-uploader"
}
