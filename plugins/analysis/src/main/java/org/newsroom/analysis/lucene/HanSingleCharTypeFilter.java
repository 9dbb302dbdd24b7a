package org.newsroom.analysis.lucene;

import java.io.IOException;
import org.apache.lucene.analysis.TokenFilter;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.standard.StandardTokenizer;
import org.apache.lucene.analysis.tokenattributes.CharTermAttribute;
import org.apache.lucene.analysis.tokenattributes.TypeAttribute;

/**
 * Marks one-character Han tokens with the type that {@link org.apache.lucene.analysis.cjk.CJKBigramFilter}
 * bigrams, leaving multi-character words (typed "word" by smartcn) untouched.
 *
 * <p>smartcn's dictionary lacks most person names, so it splits them into single characters
 * (普京 -> 普 京, 习近平 -> 习 近 平). Bigramming such runs of adjacent single characters turns them
 * back into discriminating units (普京; 习近 近平) while dictionary words (北京, 天然气) stay whole.
 */
public final class HanSingleCharTypeFilter extends TokenFilter {
    static final String HAN_TYPE = StandardTokenizer.TOKEN_TYPES[StandardTokenizer.IDEOGRAPHIC];

    private final CharTermAttribute term = addAttribute(CharTermAttribute.class);
    private final TypeAttribute type = addAttribute(TypeAttribute.class);

    public HanSingleCharTypeFilter(TokenStream input) {
        super(input);
    }

    @Override
    public boolean incrementToken() throws IOException {
        if (input.incrementToken() == false) {
            return false;
        }
        if (isSingleHan()) {
            type.setType(HAN_TYPE);
        }
        return true;
    }

    private boolean isSingleHan() {
        int length = term.length();
        if (length == 0 || length > 2) {
            return false;
        }
        int cp = Character.codePointAt(term.buffer(), 0, length);
        return Character.charCount(cp) == length && Character.UnicodeScript.of(cp) == Character.UnicodeScript.HAN;
    }
}
