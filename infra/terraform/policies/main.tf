# The evidence bucket's policy document, rendered without any provider: the same document as
# infra/s3-policies/bucket-policy.json (a test renders both and compares them).

variable "bucket" {
  type        = string
  description = "The evidence bucket's name."
}

variable "station_principal" {
  type        = string
  description = "ARN of the ingest stations' principal (an IAM role on AWS)."
}

variable "auditor_principal" {
  type        = string
  description = "ARN of the auditors' principal (an IAM role on AWS)."
}

locals {
  bucket_arn  = "arn:aws:s3:::${var.bucket}"
  objects_arn = "arn:aws:s3:::${var.bucket}/*"
  bucket_read = [
    "s3:ListBucket",
    "s3:ListBucketVersions",
    "s3:GetBucketObjectLockConfiguration",
    "s3:GetBucketVersioning",
  ]
  object_read = [
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:GetObjectRetention",
    "s3:GetObjectLegalHold",
  ]
  object_write = [
    "s3:PutObject",
    "s3:PutObjectRetention",
    "s3:PutObjectLegalHold",
  ]
}

output "bucket_policy" {
  description = "The bucket policy (JSON)."
  value = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "StationPutsAndLocks"
        Effect    = "Allow"
        Principal = { AWS = [var.station_principal] }
        Action    = concat(local.object_write, local.object_read)
        Resource  = [local.objects_arn]
      },
      {
        Sid       = "StationListsTheBucket"
        Effect    = "Allow"
        Principal = { AWS = [var.station_principal] }
        Action    = local.bucket_read
        Resource  = [local.bucket_arn]
      },
      {
        Sid       = "AuditorReadsObjects"
        Effect    = "Allow"
        Principal = { AWS = [var.auditor_principal] }
        Action    = local.object_read
        Resource  = [local.objects_arn]
      },
      {
        Sid       = "AuditorListsTheBucket"
        Effect    = "Allow"
        Principal = { AWS = [var.auditor_principal] }
        Action    = local.bucket_read
        Resource  = [local.bucket_arn]
      },
      {
        Sid       = "NeverDeleteBypassOrUnlock"
        Effect    = "Deny"
        Principal = { AWS = [var.station_principal, var.auditor_principal] }
        Action = [
          "s3:DeleteObject",
          "s3:DeleteObjectVersion",
          "s3:BypassGovernanceRetention",
          "s3:PutBucketObjectLockConfiguration",
          "s3:PutBucketPolicy",
          "s3:DeleteBucketPolicy",
          "s3:PutBucketVersioning",
          "s3:DeleteBucket",
        ]
        Resource = [local.bucket_arn, local.objects_arn]
      },
      {
        Sid       = "AuditorNeverWrites"
        Effect    = "Deny"
        Principal = { AWS = [var.auditor_principal] }
        Action    = local.object_write
        Resource  = [local.objects_arn]
      },
    ]
  })
}
