using Keystone.Checkpointing;

namespace Keystone.UnitTests.Checkpointing;

public sealed class ExportStoreNamesTests
{
    [Fact]
    public void A_name_says_its_sink_hour_commit_time_and_partition_and_parses_back()
    {
        var at = new DateTimeOffset(2026, 12, 4, 13, 5, 7, TimeSpan.Zero).AddTicks(1_234_567);
        var name = ExportStore.NameOf("ads-billing", 3, at);

        Assert.Equal("ads-billing/2026-12-04/13/20261204T1305071234567Z-p003.jsonl", name);
        Assert.Equal(("ads-billing", 3, at), ExportStore.Parse(name));
        Assert.Equal(("ads-fraud-alerts", 1234, at), ExportStore.Parse(ExportStore.NameOf("ads-fraud-alerts", 1234, at)));
    }

    [Fact]
    public void Names_sort_by_commit_time_within_an_hour()
    {
        var t = new DateTimeOffset(2026, 12, 4, 13, 0, 0, TimeSpan.Zero);
        var names = new[] { t.AddMinutes(59), t.AddSeconds(1), t.AddTicks(1), t }.Select(x => ExportStore.NameOf("ads-billing", 0, x)).ToList();

        Assert.Equal(names.OrderBy(n => n, StringComparer.Ordinal), names.AsEnumerable().Reverse());
    }

    [Theory]
    [InlineData("../ads-billing/2026-12-04/13/20261204T1305071234567Z-p003.jsonl")]
    [InlineData("ads-billing/2026-12-04/13/../../x")]
    [InlineData("ads-billing/2026-12-04/14/20261204T1305071234567Z-p003.jsonl")]
    [InlineData("ads-billing/2026-12-04/13/20261204T1305071234567Z-p003.json")]
    [InlineData("ads-billing/2026-12-04/13/20261204T1305071234567Z-p-03.jsonl")]
    [InlineData("Ads-Billing/2026-12-04/13/20261204T1305071234567Z-p003.jsonl")]
    [InlineData("ads-billing/2026-12-04/13/2026120xT1305071234567Z-p003.jsonl")]
    [InlineData("ads-billing")]
    [InlineData("")]
    public void Anything_else_is_not_an_export_file(string name) => Assert.Null(ExportStore.Parse(name));
}
