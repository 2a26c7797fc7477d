import Foundation
import StriveS3
import Testing

/// AWS's published signing examples: the generic test suite (service `service`) and the S3 API
/// reference's header-based examples. A signer that passes these signs what AWS and S3-compatible stores
/// verify.
@Suite("SigV4 signing against AWS's published vectors")
struct SigV4Tests {
    static let suiteDate = Date(timeIntervalSince1970: 1_440_938_160) // 20150830T123600Z
    static let suite = SigV4Signer(
        credentials: .init(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        region: "us-east-1", service: "service")
    static let s3Date = Date(timeIntervalSince1970: 1_369_353_600) // 20130524T000000Z
    static let s3 = SigV4Signer(
        credentials: .init(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        region: "us-east-1")

    func signature(_ authorization: String) -> String {
        String(authorization.split(separator: "=").last ?? "")
    }

    @Test func timestampsAreCompactUTC() {
        #expect(SigV4Signer.timestamp(Self.suiteDate) == "20150830T123600Z")
        #expect(SigV4Signer.timestamp(Self.s3Date) == "20130524T000000Z")
    }

    @Test(arguments: [
        ("GET", "/", [(String, String)](), "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        ("GET", "/", [("Param2", "value2"), ("Param1", "value1")], "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
        ("POST", "/", [], "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
        ("GET", "/ሴ", [], "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"),
    ])
    func theGenericSuite(method: String, path: String, query: [(String, String)], expected: String) {
        let authorization = Self.suite.authorization(
            method: method, path: path, query: query,
            headers: [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")],
            payloadHash: SigV4Signer.emptyPayloadHash, date: Self.suiteDate)
        #expect(
            authorization
                == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, "
                + "Signature=\(expected)")
    }

    @Test func s3GetObjectWithARange() {
        let authorization = Self.s3.authorization(
            method: "GET", path: "/test.txt", query: [],
            headers: [
                ("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9"), ("x-amz-content-sha256", SigV4Signer.emptyPayloadHash),
                ("x-amz-date", "20130524T000000Z"),
            ], payloadHash: SigV4Signer.emptyPayloadHash, date: Self.s3Date)
        #expect(authorization.contains("SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"))
        #expect(signature(authorization) == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    @Test func s3PutObjectWithAnEncodedKeyAndASignedBody() {
        let payload = SigV4Signer.hexSHA256(Array("Welcome to Amazon S3.".utf8))
        #expect(payload == "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072")
        let authorization = Self.s3.authorization(
            method: "PUT", path: "/test$file.text", query: [],
            headers: [
                ("Host", "examplebucket.s3.amazonaws.com"), ("Date", "Fri, 24 May 2013 00:00:00 GMT"),
                ("x-amz-content-sha256", payload), ("x-amz-date", "20130524T000000Z"), ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ], payloadHash: payload, date: Self.s3Date)
        #expect(signature(authorization) == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")
    }

    @Test(arguments: [
        ([("lifecycle", "")], "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"),
        ([("prefix", "J"), ("max-keys", "2")], "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
    ])
    func s3BucketRequestsWithQueries(query: [(String, String)], expected: String) {
        let authorization = Self.s3.authorization(
            method: "GET", path: "/", query: query,
            headers: [
                ("Host", "examplebucket.s3.amazonaws.com"), ("x-amz-content-sha256", SigV4Signer.emptyPayloadHash),
                ("x-amz-date", "20130524T000000Z"),
            ], payloadHash: SigV4Signer.emptyPayloadHash, date: Self.s3Date)
        #expect(signature(authorization) == expected)
    }

    @Test func encodingKeepsOnlyUnreservedCharacters() {
        #expect(SigV4Signer.encode("a b+c/é~", keepingSlashes: true) == "a%20b%2Bc/%C3%A9~")
        #expect(SigV4Signer.encode("a/b", keepingSlashes: false) == "a%2Fb")
        #expect(SigV4Signer.canonicalQuery([("b", "2"), ("a", "x y"), ("a", "1")]) == "a=1&a=x%20y&b=2")
    }
}
