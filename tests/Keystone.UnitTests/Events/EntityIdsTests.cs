using System.Text;
using Keystone.Events;

namespace Keystone.UnitTests.Events;

public class EntityIdsTests
{
    // Each refused class, with a word the reason must contain.
    public static TheoryData<string, string> Refused => new()
    {
        { "", "empty" },
        { new string('a', EntityIds.MaxLength + 1), "at most 128" },
        { "a\0b", "control" },
        { "a\u0001", "control" },
        { "tab\there", "control" },
        { "line\nbreak", "control" },
        { "del\u007F", "control" },
        { "c1\u0085", "control" },
        { "c1\u009F", "control" },
        { "rlo\u202Eevil", "bidirectional" },
        { "lre\u202A", "bidirectional" },
        { "pdf\u202C", "bidirectional" },
        { "lri\u2066", "bidirectional" },
        { "pdi\u2069", "bidirectional" },
        { "rlm\u200F", "bidirectional" },
        { "alm\u061C", "bidirectional" },
        { "zw\u200Bsp", "invisible" },
        { "zwnj\u200C", "invisible" },
        { "zwj\u200D", "invisible" },
        { "wj\u2060", "invisible" },
        { "\uFEFFbom", "invisible" },
        { "soft\u00ADhyphen", "invisible" },
        { "vs16\uFE0F", "invisible" },
        { "filler\u3164", "invisible" },
        { "tag\U000E0041", "invisible" },
        { "a b", "whitespace" },
        { "nbsp\u00A0", "whitespace" },
        { "ideographic\u3000space", "whitespace" },
        { "em\u2003space", "whitespace" },
        { "ls\u2028", "whitespace" },
        { "a/b", "'/'" },
        { "a\\b", "'/'" },
        { "/", "'/'" },
        { "non\uFFFF", "noncharacter" },
        { "non\uFDD0", "noncharacter" },
        { ".", "'.' or '..'" },
        { "..", "'.' or '..'" },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public void Refuses_each_class_and_names_the_field(string id, string word)
    {
        var problem = EntityIds.Problem(id, "user_id");
        Assert.NotNull(problem);
        Assert.StartsWith("user_id ", problem);
        Assert.Contains(word, problem);
        Assert.False(EntityIds.IsPlainAscii(Encoding.UTF8.GetBytes(id)));
    }

    // Not theory data: xunit passes theory strings through UTF-8, which turns a lone surrogate into U+FFFD.
    [Fact]
    public void Lone_surrogates_are_refused()
    {
        foreach (var id in new[] { "lone\uD800", "\uDC00lone", "swapped\uDC00\uD800", "\uD83D" })
            Assert.Contains("lone surrogate", EntityIds.Problem(id, "user_id"));
        Assert.Null(EntityIds.Reason("pair\uD83D\uDE00"));
    }

    [Fact]
    public void The_issue_ids_are_refused()
    {
        Assert.NotNull(EntityIds.Reason("user\0\u202Egnp.exe"));
        Assert.NotNull(EntityIds.Reason("user with space"));
        Assert.NotNull(EntityIds.Reason("user/with/slash"));
    }

    [Theory]
    [InlineData("user-123")]
    [InlineData("josé-ñ")]
    [InlineData("用户.1")]
    [InlineData("Ελληνικά_ид")]
    [InlineData("مستخدم")]
    [InlineData("a.b.c")]
    [InlineData("...")]
    [InlineData(".hidden")]
    [InlineData("trailing.")]
    [InlineData("-dash-")]
    [InlineData("a~b%2F")]
    [InlineData("😀emoji")]
    [InlineData("e\u0301")]
    public void Accepts_letters_of_any_script_dots_dashes_and_symbols(string id) => Assert.Null(EntityIds.Problem(id, "user_id"));

    [Fact]
    public void Exactly_128_characters_is_accepted_and_129_is_not()
    {
        Assert.Null(EntityIds.Reason(new string('a', 128)));
        Assert.Null(EntityIds.Reason(string.Concat(Enumerable.Repeat("ñ", 128))));
        Assert.Null(EntityIds.Reason(string.Concat(Enumerable.Repeat("😀", 64))));
        Assert.NotNull(EntityIds.Reason(new string('a', 129)));
        Assert.True(EntityIds.IsPlainAscii(Encoding.UTF8.GetBytes(new string('a', 128))));
        Assert.False(EntityIds.IsPlainAscii(Encoding.UTF8.GetBytes(new string('a', 129))));
    }

    [Fact]
    public void The_ascii_fast_path_agrees_with_the_rule_on_every_ascii_character()
    {
        for (var c = (char)0; c < 0x80; c++)
        {
            var id = $"x{c}y";
            if (EntityIds.IsPlainAscii(Encoding.UTF8.GetBytes(id))) Assert.Null(EntityIds.Reason(id));
            else Assert.NotNull(EntityIds.Reason(id));
        }
    }
}
