import Consumers
import Testing

@Suite("Warehouse column types: mapping from format_type and safe widenings")
struct WarehouseColumnTypeTests {
    @Test("Built-in types map to themselves; enums, domains and extension types become text")
    func mapping() {
        let cases: [(String, String)] = [
            ("integer", "integer"), ("bigint", "bigint"), ("smallint", "smallint"),
            ("numeric(12,2)", "numeric(12,2)"), ("numeric", "numeric"),
            ("character varying(20)", "character varying(20)"), ("character varying", "character varying"),
            ("character(3)", "character(3)"), ("text[]", "text[]"), ("integer[]", "integer[]"),
            ("timestamp(3) with time zone", "timestamp(3) with time zone"),
            ("timestamp without time zone", "timestamp without time zone"),
            ("double precision", "double precision"), ("real", "real"), ("uuid", "uuid"), ("jsonb", "jsonb"),
            ("\"char\"", "\"char\""),
            ("tenant_acme.status", "text"), ("tenant_acme.status[]", "text[]"), ("public.citext", "text"),
            ("\"tenant_we\"\"ird\".\"my type\"", "text"), ("integer; DROP TABLE x", "text"),
            ("numeric(1,2) ; --", "text"), ("character varying(20) , x int", "text"),
        ]
        for (source, warehouse) in cases {
            #expect(WarehouseColumnType(sourceType: source).sql == warehouse, "\(source)")
        }
    }

    @Test("Widenings are safe; narrowings, text to anything else and lossy conversions are not")
    func widening() {
        func widens(_ old: String, _ new: String) -> Bool {
            WarehouseColumnType(sourceType: old).widens(to: WarehouseColumnType(sourceType: new))
        }
        for (old, new) in [
            ("integer", "bigint"), ("smallint", "integer"), ("integer", "numeric"), ("integer", "numeric(10,0)"),
            ("bigint", "numeric(19,0)"), ("real", "double precision"), ("integer", "double precision"),
            ("numeric(8,2)", "numeric(12,2)"), ("numeric(8,2)", "numeric(9,3)"), ("numeric(8,2)", "numeric"),
            ("character varying(20)", "character varying(50)"), ("character varying(20)", "text"),
            ("character varying(20)", "character varying"), ("text", "character varying"), ("integer", "text"),
            ("timestamp(3) with time zone", "timestamp with time zone"), ("date", "timestamp without time zone"),
            ("integer[]", "bigint[]"), ("tenant_acme.status", "text"),
        ] {
            #expect(widens(old, new), "\(old) -> \(new)")
        }
        for (old, new) in [
            ("text", "integer"), ("bigint", "integer"), ("bigint", "double precision"), ("double precision", "real"),
            ("numeric(12,2)", "numeric(8,2)"), ("numeric(8,2)", "numeric(8,3)"), ("numeric", "numeric(30,2)"),
            ("integer", "numeric(9,0)"), ("character varying(50)", "character varying(20)"),
            ("text", "character varying(20)"), ("timestamp without time zone", "timestamp with time zone"),
            ("timestamp with time zone", "timestamp(3) with time zone"), ("json", "jsonb"), ("integer[]", "integer"),
            ("integer", "integer[]"),
        ] {
            #expect(!widens(old, new), "\(old) -> \(new)")
        }
    }
}
