package org.newsroom.analysis.lucene;

import java.io.IOException;
import org.apache.lucene.analysis.TokenFilter;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.tokenattributes.CharTermAttribute;

/** Replaces Russian ё/Ё with е/Е, so "ещё" and "еще" index the same way. */
public final class YoFoldingFilter extends TokenFilter {
    private final CharTermAttribute term = addAttribute(CharTermAttribute.class);

    public YoFoldingFilter(TokenStream input) {
        super(input);
    }

    @Override
    public boolean incrementToken() throws IOException {
        if (input.incrementToken() == false) {
            return false;
        }
        char[] buffer = term.buffer();
        for (int i = 0, n = term.length(); i < n; i++) {
            if (buffer[i] == 'ё') {
                buffer[i] = 'е';
            } else if (buffer[i] == 'Ё') {
                buffer[i] = 'Е';
            }
        }
        return true;
    }
}
