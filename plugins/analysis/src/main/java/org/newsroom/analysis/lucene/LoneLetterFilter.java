package org.newsroom.analysis.lucene;

import org.apache.lucene.analysis.FilteringTokenFilter;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.tokenattributes.CharTermAttribute;

/**
 * Drops one-letter tokens of any script but Han. smartcn's segmenter knows Han and Latin words,
 * but cuts other alphabets (Cyrillic, Greek) into single letters; kept, they would make a
 * Russian query match any text containing its letters in a Chinese-analysed field.
 */
public final class LoneLetterFilter extends FilteringTokenFilter {
    private final CharTermAttribute term = addAttribute(CharTermAttribute.class);

    public LoneLetterFilter(TokenStream input) {
        super(input);
    }

    @Override
    protected boolean accept() {
        if (term.length() == 0 || term.length() > 2) {
            return true;
        }
        int cp = Character.codePointAt(term.buffer(), 0, term.length());
        if (Character.charCount(cp) != term.length() || Character.isLetter(cp) == false) {
            return true;
        }
        return Character.UnicodeScript.of(cp) == Character.UnicodeScript.HAN;
    }
}
